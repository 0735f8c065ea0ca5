//! `ferry check`: load and validate inventory, variables, templates and
//! playbooks; connect nowhere. Prints every problem, exits 0 when clean, 1 otherwise.

use crate::CmdResult;
use crate::cli::CheckArgs;
use crate::exit;
use crate::inventory::Inventory;
use crate::playbook::diag::CheckReport;

pub fn check(args: CheckArgs) -> CmdResult {
    let inventory = Inventory::load(&args.inv.inventory).map_err(miette::Report::new)?;
    let extra_vars =
        crate::vars::parse_extra_vars(&args.inv.extra_vars).map_err(miette::Report::new)?;

    let color = super::color(&std::io::stdout());
    match crate::playbook::load_and_check(&args.playbooks, &inventory, &extra_vars) {
        Ok((playbooks, warnings)) => {
            if !warnings.is_empty() {
                print!("{}", CheckReport::new(warnings).render(color));
            }
            let plays: usize = playbooks.iter().map(|p| p.plays.len()).sum();
            let tasks: usize = playbooks.iter().map(count_tasks).sum();
            println!(
                "ok: {} playbook(s), {plays} play(s), {tasks} task(s) checked",
                playbooks.len()
            );
            Ok(exit::OK)
        }
        Err(report) => {
            print!("{}", report.render(color));
            Ok(exit::ERROR)
        }
    }
}

/// Tasks in a playbook (handlers included), counting inside blocks.
pub fn count_tasks(pb: &crate::playbook::Playbook) -> usize {
    fn items(v: &[crate::playbook::TaskItem]) -> usize {
        v.iter()
            .map(|i| match i {
                crate::playbook::TaskItem::Task(_) => 1,
                crate::playbook::TaskItem::Block(b) => {
                    items(&b.block) + items(&b.rescue) + items(&b.always)
                }
            })
            .sum()
    }
    pb.plays
        .iter()
        .map(|p| {
            items(&p.pre_tasks)
                + items(&p.role_tasks)
                + items(&p.tasks)
                + items(&p.post_tasks)
                + p.handlers.len()
        })
        .sum()
}
