//! The `ferroban` binary. Invoked as `fail2ban-server`, `fail2ban-client` or `fail2ban-regex`
//! (a symlink), it behaves as `ferroban server`, `ferroban client` or `ferroban regex`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use ferroban::regex_cli::RegexArgs;
use ferroban::testfilters::{self, TestFiltersOptions};

/// fail2ban-compatible intrusion prevention.
#[derive(Debug, Parser)]
#[command(name = "ferroban", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The daemon (fail2ban-server).
    #[command(disable_help_flag = true)]
    Server {
        /// Arguments (fail2ban-server's).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Control a running daemon (fail2ban-client).
    #[command(disable_help_flag = true)]
    Client {
        /// Arguments (fail2ban-client's).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Test a filter or regex against a log (fail2ban-regex).
    Regex(Box<RegexArgs>),
    /// Live dashboard of a running daemon: jails, recent bans, top offenders.
    Top(ferroban::top::TopArgs),
    /// Write man pages (man/*.1) and shell completions (bash, zsh, fish) into DIR, generated
    /// from this command-line definition (used by the package build).
    #[command(hide = true)]
    Assets {
        /// Output directory.
        dir: PathBuf,
    },
    /// Run annotated sample logs (`# failJSON:`) against filters.
    TestFilters {
        /// Configuration directory with filter.d/.
        #[arg(short = 'c', long = "config", default_value = "/etc/fail2ban")]
        config: PathBuf,
        /// Only these filters (repeatable); default: every filter.d/*.conf but *common.conf.
        #[arg(short = 'f', long = "filter")]
        filter: Vec<String>,
        /// Print per-filter totals.
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
        /// Directory of sample logs named after their filters.
        samples: PathBuf,
    },
}

/// Maps the program name to a subcommand: `fail2ban-regex ARGS` → `ferroban regex ARGS`.
fn normalise_args(mut args: Vec<OsString>) -> Vec<OsString> {
    let prog = args
        .first()
        .map(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let sub = match prog.as_str() {
        "fail2ban-server" => Some("server"),
        "fail2ban-client" => Some("client"),
        "fail2ban-regex" => Some("regex"),
        _ => None,
    };
    if let Some(sub) = sub {
        args[0] = OsString::from("ferroban");
        args.insert(1, OsString::from(sub));
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalise_args(std::env::args_os().collect()));
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ERROR: {e:#}");
            ExitCode::from(255)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Server { args } => ferroban::daemon::run(&args),
        Command::Client { args } => ferroban::control::client::run(&args),
        Command::Top(a) => ferroban::top::run(&a),
        Command::Regex(args) => {
            let code = ferroban::regex_cli::run(&args)?;
            Ok(u8::try_from(code).unwrap_or(255))
        }
        Command::Assets { dir } => {
            write_assets(&dir)?;
            Ok(0)
        }
        Command::TestFilters {
            config,
            filter,
            verbose,
            samples,
        } => {
            let report = testfilters::run(&TestFiltersOptions {
                config_dir: config,
                samples_dir: samples,
                filters: filter,
            })?;
            if verbose {
                for (name, (p, f)) in &report.per_filter {
                    println!("{name}: {p} passed, {f} failed");
                }
            }
            print!("{}", report.render());
            Ok(u8::from(!report.failures.is_empty()))
        }
    }
}

/// Man pages for `ferroban` and each subcommand (`ferroban-server.1`, ...), and completions.
fn write_assets(dir: &std::path::Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let man = dir.join("man");
    let comp = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let top = Cli::command();
    let mut pages: Vec<(String, clap::Command)> = vec![("ferroban".into(), top.clone())];
    for sub in top.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = format!("ferroban-{}", sub.get_name());
        let cmd = match sub.get_name() {
            // The server and client parse their own (fail2ban's) options: document those.
            "server" => ferroban::daemon::ServerArgs::command(),
            _ => sub.clone(),
        };
        pages.push((name.clone(), cmd.name(name)));
    }
    for (name, cmd) in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf)?;
        std::fs::write(man.join(format!("{name}.1")), buf)?;
    }
    let mut cmd = Cli::command();
    for (shell, file) in [
        (clap_complete::Shell::Bash, "ferroban.bash"),
        (clap_complete::Shell::Zsh, "_ferroban"),
        (clap_complete::Shell::Fish, "ferroban.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "ferroban", &mut buf);
        std::fs::write(comp.join(file), buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_generated_from_the_cli() {
        let dir = std::env::temp_dir().join(format!("ferroban-assets-{}", std::process::id()));
        write_assets(&dir).unwrap();
        for f in [
            "man/ferroban.1",
            "man/ferroban-server.1",
            "man/ferroban-regex.1",
            "man/ferroban-client.1",
            "completions/ferroban.bash",
            "completions/_ferroban",
            "completions/ferroban.fish",
        ] {
            let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            assert!(text.len() > 100, "{f} is empty");
        }
        let server = std::fs::read_to_string(dir.join("man/ferroban-server.1")).unwrap();
        assert!(server.contains("logtarget"), "{server}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn program_name_selects_the_subcommand() {
        let a = normalise_args(vec!["/usr/bin/fail2ban-regex".into(), "x".into()]);
        assert_eq!(
            a,
            vec![OsString::from("ferroban"), "regex".into(), "x".into()]
        );
        let b = normalise_args(vec!["ferroban".into(), "regex".into()]);
        assert_eq!(b, vec![OsString::from("ferroban"), "regex".into()]);
    }
}
