//! Blocks: keywords inherited down `block:`s, and the walk over task items with
//! `rescue:` (catches the block's failures) and `always:` (runs either way).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;

use crate::playbook::{Play, TaskItem, TaskKeywords};

use super::Engine;
use super::play_run::PlayRun;

/// Keywords inherited down blocks, plus whether a `rescue` catches failures here.
#[derive(Clone, Default)]
pub(super) struct Inherit {
    pub(super) kw: TaskKeywords,
    pub(super) rescuable: bool,
}

impl Inherit {
    pub(super) fn root(play: &Play) -> Self {
        Self {
            kw: TaskKeywords {
                tags: play.tags.clone(),
                become_: play.become_,
                become_user: play.become_user.clone(),
                any_errors_fatal: Some(play.any_errors_fatal),
                check_mode: play.check_mode,
                environment: play.environment.clone(),
                ..TaskKeywords::default()
            },
            rescuable: false,
        }
    }

    pub(super) fn child(&self, kw: &TaskKeywords) -> TaskKeywords {
        let p = &self.kw;
        let mut when = p.when.clone();
        when.extend(kw.when.iter().cloned());
        let mut tags = p.tags.clone();
        for t in &kw.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        let mut vars = p.vars.clone();
        vars.extend(kw.vars.clone());
        let mut environment = p.environment.clone();
        environment.extend(kw.environment.clone());
        TaskKeywords {
            when,
            tags,
            become_: kw.become_.or(p.become_),
            become_user: kw.become_user.clone().or_else(|| p.become_user.clone()),
            ignore_errors: kw.ignore_errors.or(p.ignore_errors),
            vars,
            environment,
            delegate_to: kw.delegate_to.clone().or_else(|| p.delegate_to.clone()),
            run_once: kw.run_once.or(p.run_once),
            no_log: kw.no_log.or(p.no_log),
            any_errors_fatal: kw.any_errors_fatal.or(p.any_errors_fatal),
            timeout: kw.timeout.or(p.timeout),
            check_mode: kw.check_mode.or(p.check_mode),
        }
    }
}

impl Engine {
    /// Walk task items over a set of hosts (linear: each task on all of them before the next).
    pub(super) fn walk<'a>(
        &'a self,
        pr: &'a PlayRun<'a>,
        items: &'a [TaskItem],
        hosts: Vec<usize>,
        inh: &'a Inherit,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            for item in items {
                let active: Vec<usize> = hosts.iter().copied().filter(|&h| pr.active(h)).collect();
                if active.is_empty() || self.interrupted() {
                    return;
                }
                match item {
                    TaskItem::Task(t) => {
                        let kw = inh.child(&t.keywords);
                        if !self.tags_match(&kw.tags) || !self.started(t) {
                            continue;
                        }
                        self.run_task(pr, t, &kw, inh.rescuable, active, false)
                            .await;
                    }
                    TaskItem::Block(b) => {
                        let kw = inh.child(&b.keywords);
                        let inner = Inherit {
                            kw: kw.clone(),
                            rescuable: inh.rescuable || !b.rescue.is_empty(),
                        };
                        self.walk(pr, &b.block, active.clone(), &inner).await;
                        let outer = Inherit {
                            kw,
                            rescuable: inh.rescuable,
                        };
                        if !b.rescue.is_empty() && !pr.ended.load(Ordering::SeqCst) {
                            let to_rescue: Vec<usize> = active
                                .iter()
                                .copied()
                                .filter(|&h| {
                                    let mut s = pr.state(h);
                                    let take = s.failed && !s.unreachable;
                                    if take {
                                        s.failed = false;
                                    }
                                    take
                                })
                                .collect();
                            if !to_rescue.is_empty() {
                                self.walk(pr, &b.rescue, to_rescue, &outer).await;
                            }
                        }
                        if !b.always.is_empty() && !pr.ended.load(Ordering::SeqCst) {
                            let mut was_failed = Vec::new();
                            for &h in &active {
                                let mut s = pr.state(h);
                                if s.failed && !s.unreachable {
                                    s.failed = false;
                                    was_failed.push(h);
                                }
                            }
                            self.walk(pr, &b.always, active.clone(), &outer).await;
                            for h in was_failed {
                                pr.state(h).failed = true;
                            }
                        }
                    }
                }
            }
        })
    }
}
