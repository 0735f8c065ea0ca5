//! Handlers: run once per play section on the hosts that notified them (by name or
//! `listen`), in definition order; handlers may notify further handlers.

use std::sync::atomic::Ordering;

use super::Engine;
use super::blocks::Inherit;
use super::play_run::PlayRun;

impl Engine {
    /// Run notified handlers, in definition order, once per host that notified them.
    pub(super) async fn flush_handlers(&self, pr: &PlayRun<'_>, hosts: &[usize]) {
        let handlers = &pr.play.handlers;
        for _pass in 0..16 {
            let mut notified: Vec<(usize, Vec<String>)> = Vec::new();
            for &h in hosts {
                let mut s = pr.state(h);
                if s.notified.is_empty() {
                    continue;
                }
                let eligible = !s.unreachable
                    && !s.ended
                    && (self.opts.force_handlers
                        || (!s.failed && !pr.ended.load(Ordering::SeqCst)));
                let n = std::mem::take(&mut s.notified);
                if eligible {
                    notified.push((h, n));
                }
            }
            if notified.is_empty() || self.interrupted() {
                return;
            }
            for n in notified.iter().flat_map(|(_, n)| n) {
                let known = handlers.iter().any(|hd| {
                    hd.name.as_deref() == Some(n)
                        || hd.display_name() == *n
                        || hd.listen.contains(n)
                });
                if !known {
                    self.warn(
                        None,
                        format!(
                            "a task notified `{n}`, but no handler has that name or listens to it"
                        ),
                    );
                }
            }
            let root = Inherit::root(pr.play);
            for hd in handlers {
                let targets: Vec<usize> = notified
                    .iter()
                    .filter(|(h, n)| {
                        let s = pr.state(*h);
                        !s.unreachable
                            && (self.opts.force_handlers || !s.failed)
                            && n.iter().any(|x| {
                                hd.name.as_deref() == Some(x)
                                    || hd.display_name() == *x
                                    || hd.listen.contains(x)
                            })
                    })
                    .map(|(h, _)| *h)
                    .collect();
                if targets.is_empty() {
                    continue;
                }
                let kw = root.child(&hd.keywords);
                self.run_task(pr, hd, &kw, false, targets, true).await;
            }
        }
    }
}
