//! Thin entry point: parse the command line, call the library, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use ferry::cli::{BenchCommand, Cli, Command, InventoryArgs, InventoryCommand, LabCommand};

fn main() -> ExitCode {
    // One error, one line where it fits: never wrap a message mid-sentence.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    ferry::exit::quiet_on_broken_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => ferry::cmd::run::run(args),
        Command::Check(args) => ferry::cmd::check::check(args),
        Command::Inventory(InventoryArgs {
            command: Some(InventoryCommand::FromVagrant(args)),
            ..
        }) => ferry::cmd::inventory::from_vagrant(args),
        Command::Inventory(args) => ferry::cmd::inventory::inventory(args),
        Command::Exec(args) => ferry::cmd::exec::exec(args),
        Command::Facts(args) => ferry::cmd::facts::facts(args),
        Command::Experiment(args) => ferry::cmd::experiment::experiment(args),
        Command::Lab(LabCommand::Up(args)) => ferry::cmd::lab::up(args),
        Command::Lab(LabCommand::Down(args)) => ferry::cmd::lab::down(args),
        Command::Lab(LabCommand::Status(args)) => ferry::cmd::lab::status(args),
        Command::Lab(LabCommand::Exec(args)) => ferry::cmd::lab::exec(args),
        Command::Bench(BenchCommand::Provision(args)) => {
            ferry::cmd::bench_provision::provision(args)
        }
        Command::Bench(BenchCommand::Connect(args)) => ferry::cmd::bench_connect::connect(args),
        Command::Bench(BenchCommand::Check(args)) => ferry::cmd::bench_check::check(args),
        Command::Bench(BenchCommand::Report(args)) => ferry::cmd::bench_report::report(args),
        Command::Bench(BenchCommand::Experiment(args)) => {
            ferry::cmd::bench_experiment::experiment(args)
        }
        Command::Report(args) => ferry::cmd::report::report(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(ferry::exit::ERROR)
        }
    }
}
