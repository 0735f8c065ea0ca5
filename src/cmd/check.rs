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
    // Experiment files of their own go to the experiment stage's checks; experiment
    // plays are checked there too, and their playbooks by the loader as well.
    let experiments = crate::experiment::check::check_files(
        &args.playbooks,
        &inventory,
        args.inv.limit.as_deref(),
    );
    let loaded = if experiments.playbooks.is_empty() {
        Ok((Vec::new(), Vec::new()))
    } else {
        crate::playbook::load_and_check(&experiments.playbooks, &inventory, &extra_vars)
    };
    match loaded {
        Ok((playbooks, mut warnings)) if !experiments.problems.iter().any(|p| p.is_error()) => {
            warnings.extend(experiments.problems);
            if !warnings.is_empty() {
                print!("{}", CheckReport::new(warnings).render(color));
            }
            let plays: usize = playbooks.iter().map(|p| p.plays.len()).sum();
            let tasks: usize = playbooks.iter().map(count_tasks).sum();
            let exps = match experiments.experiments {
                0 => String::new(),
                n => format!(", {n} experiment(s)"),
            };
            println!(
                "ok: {} playbook(s), {plays} play(s), {tasks} task(s){exps} checked",
                playbooks.len()
            );
            Ok(exit::OK)
        }
        Ok((_, mut problems)) => {
            problems.extend(experiments.problems);
            print!("{}", CheckReport::new(problems).render(color));
            Ok(exit::ERROR)
        }
        Err(mut report) => {
            report.problems.extend(experiments.problems);
            print!("{}", CheckReport::new(report.problems).render(color));
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
