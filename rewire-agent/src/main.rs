//! `rewire-agent`: see `rewire-agent --help` and docs/transport.md.

use std::path::PathBuf;
use std::process::ExitCode;

use rewire_agent::agent::{self, Config};
use rewire_agent::port::QemuConsole;
use rewire_agent::tls::Tls;
use rewire_agent::{cert, AgentError};

const USAGE: &str = "\
rewire-agent: carries a security monitor's bytes to the SDS and to other hosts' agents
over TCP with mutual TLS (docs/transport.md).

usage:
  rewire-agent run --name NAME --listen ADDR --monitor qemu:SOCKET
                   --ca CA.pem --cert NAME.pem --key NAME.key [-v|-vv]
  rewire-agent cert ca --out DIR                 operator CA: DIR/ca.pem, DIR/ca.key
  rewire-agent cert issue --ca DIR (--name NAME | --sds) --out DIR [--days N]
                                                 DIR/NAME.pem + .key (or sds.pem + .key)

exit codes: 0 ok, 1 error (one line on stderr), 2 usage";

fn usage(msg: &str) -> ExitCode {
    eprintln!("rewire-agent: {msg}\n\n{USAGE}");
    ExitCode::from(2)
}

struct Args(Vec<String>);

impl Args {
    fn take(&mut self, flag: &str) -> Result<Option<String>, String> {
        match self.0.iter().position(|a| a == flag) {
            Some(i) if i + 1 < self.0.len() => {
                let v = self.0.remove(i + 1);
                self.0.remove(i);
                Ok(Some(v))
            }
            Some(_) => Err(format!("{flag} needs a value")),
            None => Ok(None),
        }
    }
    fn need(&mut self, flag: &str) -> Result<String, String> {
        self.take(flag)?
            .ok_or_else(|| format!("{flag} is required"))
    }
    fn flag(&mut self, flag: &str) -> bool {
        match self.0.iter().position(|a| a == flag) {
            Some(i) => {
                self.0.remove(i);
                true
            }
            None => false,
        }
    }
    fn done(&self) -> Result<(), String> {
        match self.0.first() {
            Some(a) => Err(format!("unexpected argument {a:?}")),
            None => Ok(()),
        }
    }
}

enum Cmd {
    Run(Config),
    Ca(PathBuf),
    Issue {
        ca: PathBuf,
        name: Option<String>,
        out: PathBuf,
        days: u32,
    },
}

fn parse(argv: Vec<String>) -> Result<Result<Cmd, AgentError>, String> {
    let mut it = argv.into_iter();
    let sub = it.next().ok_or("a command is required")?;
    let mut a = Args(it.collect());
    let cmd = match sub.as_str() {
        "run" => {
            let name = a.need("--name")?;
            let listen = a.need("--listen")?;
            let monitor = a.need("--monitor")?;
            let (ca, certf, key) = (a.need("--ca")?, a.need("--cert")?, a.need("--key")?);
            let mut verbose = 0u8;
            while a.flag("-v") || a.flag("--verbose") {
                verbose += 1;
            }
            if a.flag("-vv") {
                verbose = 2;
            }
            a.done()?;
            if !rewire_core::link::valid_name(&name) {
                return Err(format!(
                    "bad --name {name:?}: letters, digits and '-', at most 63"
                ));
            }
            let port = match monitor.strip_prefix("qemu:") {
                Some(p) => Box::new(QemuConsole(PathBuf::from(p))),
                None => {
                    return Err(format!(
                        "unknown --monitor {monitor:?} (expected qemu:SOCKET)"
                    ))
                }
            };
            let tls = match Tls::load(ca.as_ref(), certf.as_ref(), key.as_ref()) {
                Ok(t) => t,
                Err(e) => return Ok(Err(e)),
            };
            Cmd::Run(Config {
                name,
                listen,
                tls,
                port,
                verbose,
            })
        }
        "cert" => {
            let what = a.0.first().cloned().ok_or("cert: ca or issue")?;
            a.0.remove(0);
            match what.as_str() {
                "ca" => {
                    let out = a.need("--out")?;
                    a.done()?;
                    Cmd::Ca(out.into())
                }
                "issue" => {
                    let ca = a.need("--ca")?;
                    let out = a.need("--out")?;
                    let name = a.take("--name")?;
                    let sds = a.flag("--sds");
                    let days = match a.take("--days")? {
                        Some(d) => d.parse::<u32>().map_err(|_| format!("bad --days {d:?}"))?,
                        None => 365,
                    };
                    a.done()?;
                    if name.is_some() == sds {
                        return Err("cert issue: exactly one of --name NAME and --sds".into());
                    }
                    Cmd::Issue {
                        ca: ca.into(),
                        name,
                        out: out.into(),
                        days,
                    }
                }
                w => return Err(format!("cert: unknown {w:?} (ca or issue)")),
            }
        }
        s => return Err(format!("unknown command {s:?}")),
    };
    Ok(Ok(cmd))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let cmd = match parse(argv) {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            eprintln!("rewire-agent: error: {e}");
            return ExitCode::from(1);
        }
        Err(m) => return usage(&m),
    };
    let r = match cmd {
        Cmd::Run(cfg) => agent::run(cfg),
        Cmd::Ca(dir) => {
            cert::make_ca(&dir).map(|()| println!("operator CA written to {}", dir.display()))
        }
        Cmd::Issue {
            ca,
            name,
            out,
            days,
        } => cert::issue(&ca, name.as_deref(), &out, days).map(|()| {
            let f = name.as_deref().unwrap_or("sds");
            println!(
                "{}/{f}.pem and {f}.key issued for {days} days",
                out.display()
            )
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rewire-agent: error: {e}");
            ExitCode::from(1)
        }
    }
}
