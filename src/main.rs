//! Thin entry point: parse the command line, call the library, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use ferry::cli::{BenchCommand, Cli, Command, LabCommand};

fn main() -> ExitCode {
    // One error, one line where it fits: never wrap a message mid-sentence.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => ferry::engine::command::run(args),
        Command::Check(args) => ferry::playbook::command::check(args),
        Command::Inventory(args) => ferry::inventory::command::inventory(args),
        Command::Exec(args) => ferry::engine::command::exec(args),
        Command::Facts(args) => ferry::facts::command(args),
        Command::Lab(LabCommand::Up(args)) => ferry::lab::command::up(args),
        Command::Lab(LabCommand::Down(args)) => ferry::lab::command::down(args),
        Command::Lab(LabCommand::Status(args)) => ferry::lab::command::status(args),
        Command::Lab(LabCommand::Exec(args)) => ferry::lab::command::exec(args),
        Command::Bench(BenchCommand::Provision(args)) => ferry::engine::bench::provision(args),
        Command::Bench(BenchCommand::Check(args)) => ferry::playbook::bench::check(args),
        Command::Bench(BenchCommand::Report(args)) => ferry::plot::bench::report(args),
        Command::Report(args) => ferry::plot::command::report(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(1)
        }
    }
}
