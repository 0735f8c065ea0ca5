//! Command-line definitions (clap derive). Definitions only: no behaviour lives here.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::Strategy;

/// ferry: testbed-as-code for live-migration research.
#[derive(Debug, Parser)]
#[command(name = "ferry", version = crate::VERSION_LONG, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run playbooks against an inventory over SSH.
    Run(RunArgs),
    /// Load and validate inventory, variables, templates and playbooks; connect nowhere.
    Check(CheckArgs),
    /// Show the resolved inventory (as ansible-inventory does).
    Inventory(InventoryArgs),
    /// Run one ad-hoc command on the hosts matching a pattern.
    Exec(ExecArgs),
    /// Gather and print host facts as JSON.
    Facts(FactsArgs),
    /// Run an experiment (a matrix of live migrations, measured); the last line printed is its results directory.
    Experiment(ExperimentArgs),
    /// The built-in lab: a local test cluster of network namespaces.
    #[command(subcommand)]
    Lab(LabCommand),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Tables, plots and a self-contained HTML report of an experiment's results directory.
    Report(ReportArgs),
}

/// Options shared by every command that reads an inventory.
#[derive(Debug, Args, Clone, Default)]
pub struct InventoryOpts {
    /// Inventory file or directory (repeatable; merged in order).
    #[arg(short = 'i', long = "inventory", value_name = "INV")]
    pub inventory: Vec<PathBuf>,
    /// Extra variables, `k=v`, YAML/JSON, or `@file.yml` (repeatable; wins over every other layer).
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// Limit the selected hosts to a pattern.
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    pub limit: Option<String>,
}

/// Options for reaching hosts.
#[derive(Debug, Args, Clone)]
pub struct ConnectOpts {
    /// Private key for SSH (when the inventory does not name one).
    #[arg(long = "private-key", value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// Extra known_hosts file (repeatable).
    #[arg(long = "known-hosts", value_name = "FILE")]
    pub known_hosts: Vec<PathBuf>,
    /// Record unknown host keys (never changed ones).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Hosts worked on at once.
    #[arg(short = 'f', long, value_name = "N", default_value_t = crate::engine::DEFAULT_FORKS)]
    pub forks: usize,
    /// SSH connect timeout in seconds.
    #[arg(long, default_value_t = crate::transport::DEFAULT_CONNECT_TIMEOUT_SECS, value_name = "SECS")]
    pub connect_timeout: u64,
    /// Ask for the become (sudo) password.
    #[arg(short = 'K', long = "ask-become-pass")]
    pub ask_become_pass: bool,
    /// SSH user when neither inventory nor ssh config says.
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub inv: InventoryOpts,
    #[command(flatten)]
    pub connect: ConnectOpts,
    /// Playbook files.
    #[arg(required = true, value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
    /// Run every check, change nothing.
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show what changes (or would change) as unified diffs.
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// Only tasks with these tags (comma separated, repeatable).
    #[arg(short = 't', long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long, value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Start at the first task with this name.
    #[arg(long, value_name = "NAME")]
    pub start_at_task: Option<String>,
    /// Strategy: linear (a task on all hosts before the next) or free.
    #[arg(long, value_enum, default_value_t = Strategy::Linear)]
    pub strategy: Strategy,
    /// Run notified handlers even when a host failed.
    #[arg(long)]
    pub force_handlers: bool,
    /// Write every event as JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// More output (-v, -vv, -vvv shows the commands sent).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// With -vvv, show the values of variables named like secrets
    /// (password, secret, token, key); masked as ******** otherwise.
    #[arg(long)]
    pub show_secrets: bool,
    /// Where plays with `experiment:` put their results (`DIR/<experiment>/<UTC timestamp>/`).
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExperimentArgs {
    #[command(flatten)]
    pub inv: InventoryOpts,
    #[command(flatten)]
    pub connect: ConnectOpts,
    /// The experiment file (or a playbook: its plays with `experiment:` run, the others do not).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Results go to `DIR/<experiment>/<UTC timestamp>/`.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub out: PathBuf,
    /// Continue this results directory: runs already recorded are skipped.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Write every experiment event as JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub inv: InventoryOpts,
    /// Playbook files.
    #[arg(required = true, value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InventoryArgs {
    #[command(subcommand)]
    pub command: Option<InventoryCommand>,
    #[command(flatten)]
    pub inv: InventoryOpts,
    /// Print the whole inventory as JSON (ansible-inventory --list shape).
    #[arg(long, conflicts_with_all = ["host", "graph"])]
    pub list: bool,
    /// Print one host's merged variables.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Print the group tree.
    #[arg(long)]
    pub graph: bool,
    /// With --host: say which layer and file:line set VAR, and what it overrode.
    #[arg(long, value_name = "VAR", requires = "host")]
    pub explain: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Write an inventory for a running Vagrant cluster (`vagrant ssh-config` + the Vagrantfile's network plan).
    FromVagrant(FromVagrantArgs),
}

#[derive(Debug, Args)]
pub struct FromVagrantArgs {
    /// Directory holding the Vagrantfile (`vagrant` runs there).
    #[arg(long, value_name = "DIR", default_value = "vagrant")]
    pub dir: PathBuf,
    /// Write the inventory to FILE (default: stdout); host keys go to `known_hosts` beside it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub inv: InventoryOpts,
    #[command(flatten)]
    pub connect: ConnectOpts,
    /// Host pattern.
    pub pattern: String,
    /// Run through the become method (sudo).
    #[arg(short = 'b', long = "become")]
    pub become_: bool,
    /// Command timeout in seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// The command (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FactsArgs {
    #[command(flatten)]
    pub inv: InventoryOpts,
    #[command(flatten)]
    pub connect: ConnectOpts,
    /// Host pattern (default: all).
    #[arg(default_value = "all")]
    pub pattern: String,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Create (or repair, grow, shrink) a lab; the last line printed is its inventory path.
    Up(LabUpArgs),
    /// Remove every trace of a lab: processes, namespaces, links, mounts, state.
    Down(LabNameArgs),
    /// List hosts, addresses, link rates, sshd PIDs and whether each answers.
    Status(LabNameArgs),
    /// Run a command inside a lab host (namespaces entered directly, not over SSH).
    Exec(LabExecArgs),
}

#[derive(Debug, Args, Clone)]
pub struct LabNameArgs {
    /// Lab name.
    #[arg(long, default_value = "ferry")]
    pub name: String,
    /// Lab state directory (default /var/lib/ferry/lab/NAME).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct LabUpArgs {
    #[command(flatten)]
    pub lab: LabNameArgs,
    /// Number of hosts.
    #[arg(long, default_value_t = 3)]
    pub hosts: u32,
    /// Shape every migration link to this rate (e.g. 100mbit, 1gbit, 10gbit; `none` removes it); when absent, kept as the lab has it.
    #[arg(long, value_name = "RATE")]
    pub link_rate: Option<String>,
    /// MTU of the migration network (default 1500; when absent, kept as the lab has it).
    #[arg(long, value_name = "M")]
    pub mtu: Option<u32>,
    /// Private IPv4 range the lab takes its addresses from (a /16 or larger is split into networks).
    #[arg(long, value_name = "CIDR")]
    pub range: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct LabExecArgs {
    #[command(flatten)]
    pub lab: LabNameArgs,
    /// Host name (e.g. ferry-1) or index (1-based).
    pub host: String,
    /// The command (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Provision W tasks on N hosts twice (from nothing, then nothing to change); print wall time, tasks/s, RSS, CPU.
    Provision(BenchProvisionArgs),
    /// Open N hosts' connections at once, ferry's way and a bare russh client's; print both and each step.
    Connect(BenchConnectArgs),
    /// Time `ferry check` on a generated 200-host inventory and 500-task playbook.
    Check(BenchCheckArgs),
    /// Time `ferry report` (every format) on a generated results directory.
    Report(BenchReportArgs),
    /// Print ferry's orchestration overhead per run of a results directory, by step, and its share of the matrix's wall time.
    Experiment(BenchExperimentArgs),
}

#[derive(Debug, Args)]
pub struct BenchExperimentArgs {
    /// The results directory `ferry experiment` wrote (holds results.jsonl).
    #[arg(value_name = "RESULTS_DIR")]
    pub results: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchReportArgs {
    /// Rows in the generated results directory.
    #[arg(long, default_value_t = 10_000)]
    pub rows: u32,
}

#[derive(Debug, Args)]
pub struct BenchProvisionArgs {
    /// Hosts in the lab made for the benchmark.
    #[arg(long, default_value_t = 10)]
    pub hosts: u32,
    /// Tasks per host.
    #[arg(long, default_value_t = 20)]
    pub tasks: u32,
    /// Use this inventory instead of making a lab (repeatable; merged in order).
    #[arg(short = 'i', long = "inventory", value_name = "INV")]
    pub inventory: Vec<PathBuf>,
    /// `linear` (every host finishes a task before the next starts) or `free`.
    #[arg(long, value_enum, default_value_t = Strategy::Linear)]
    pub strategy: Strategy,
    /// Also run this tool on the same hosts (repeatable) and print the ratios.
    #[arg(long, value_enum, value_name = "TOOL")]
    pub vs: Vec<Peer>,
}

/// Another provisioning tool `ferry bench provision --vs` runs on the same hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    Pyinfra,
    Ansible,
}

#[derive(Debug, Args)]
pub struct BenchConnectArgs {
    /// Hosts in the lab made for the benchmark.
    #[arg(long, default_value_t = 50)]
    pub hosts: u32,
    /// Rounds (each: the bare client, then ferry).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Use this inventory instead of making a lab (repeatable; merged in order).
    #[arg(short = 'i', long = "inventory", value_name = "INV")]
    pub inventory: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchCheckArgs {
    /// Hosts in the generated inventory.
    #[arg(long, default_value_t = 200)]
    pub hosts: u32,
    /// Tasks in the generated playbook.
    #[arg(long, default_value_t = 500)]
    pub tasks: u32,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The results directory `ferry experiment` wrote (holds results.jsonl).
    #[arg(value_name = "RESULTS_DIR")]
    pub results: PathBuf,
    /// Where the report goes (default: RESULTS_DIR/report).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Formats to write, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FORMATS")]
    pub format: Vec<crate::plot::report::Format>,
    /// Group runs by these axes only (default: every axis, one group per scenario).
    #[arg(long, value_enum, num_args = 1.., value_name = "AXIS")]
    pub group_by: Vec<crate::plot::summary::Axis>,
    /// A second results directory: the same scenarios side by side with the change in medians.
    #[arg(long, value_name = "DIR2")]
    pub compare: Option<PathBuf>,
}

/// `--strategy linear|free`: the engine's [`Strategy`], named as it names them.
impl ValueEnum for Strategy {
    fn value_variants<'a>() -> &'a [Self] {
        &[Strategy::Linear, Strategy::Free]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}
