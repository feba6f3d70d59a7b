//! depthagg binary: parse the command line, validate it into one Config, run the chosen mode.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use depthagg::cli::{Cli, Command, ReplayArgs};
use depthagg::config::{Config, build_config};
use depthagg::run::exit;

fn main() -> ExitCode {
    depthagg::tui::init_local_offset();
    let cli = Cli::parse();
    let _ = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .install();
    match cli.command {
        Some(Command::Simulate(args)) => {
            init_logging(None, true);
            block_on(depthagg::sim::run_simulate(args))
        }
        Some(Command::Replay(args)) => {
            let cfg = match validated(&cli.run) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let explicit_out = cli.run.out.is_some();
            init_logging(cfg.log.as_deref(), cfg.headless);
            block_on(replay(args, cfg, explicit_out))
        }
        None => {
            let mut cfg = match validated(&cli.run) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if !cfg.headless && !std::io::stdout().is_terminal() {
                eprintln!("stdout is not a terminal: running headless (no dashboard)");
                cfg.headless = true;
            }
            if cfg.once && !cfg.headless {
                cfg.headless = true;
            }
            init_logging(cfg.log.as_deref(), cfg.headless);
            block_on(depthagg::run::run(cfg))
        }
    }
}

/// Validate the settings or print the one-line error and return exit code 2.
fn validated(args: &depthagg::cli::RunArgs) -> Result<Config, ExitCode> {
    build_config(args).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(exit::BAD_INPUT)
    })
}

fn block_on<F: std::future::Future<Output = color_eyre::Result<u8>>>(fut: F) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match rt.block_on(fut) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// Logs: to the --log file when given; otherwise to stderr when headless; nowhere under the
/// dashboard (it shows the last error itself and never lets logs print over the screen).
fn init_logging(log: Option<&std::path::Path>, headless: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("DEPTHAGG_LOG_LEVEL").unwrap_or_else(|_| EnvFilter::new("info"));
    if let Some(path) = log {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => {
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(filter)
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(file))
                    .try_init();
            }
            Err(e) => eprintln!("warning: --log {}: {e}; logging to stderr", path.display()),
        }
        return;
    }
    if headless {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .with_writer(std::io::stderr)
            .try_init();
    }
}

async fn replay(args: ReplayArgs, cfg: Config, explicit_out: bool) -> color_eyre::Result<u8> {
    use depthagg::replay::{Replayer, Speed, plan};
    let speed = match &args.speed {
        Some(s) => match Speed::parse(s) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(exit::BAD_INPUT);
            }
        },
        None if cfg.headless => Speed::Max,
        None => Speed::Factor(1.0),
    };
    if let Some(dir) = &args.dump_books {
        if !dir.is_dir() {
            eprintln!(
                "error: --dump-books {:?}: not an existing directory (create it first)",
                dir.display()
            );
            return Ok(exit::BAD_INPUT);
        }
    }
    let plan = match plan(&args.file, &args.symbols) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    if let Err(e) = depthagg::replay::validate(&args.file) {
        eprintln!("error: {e}");
        return Ok(exit::BAD_INPUT);
    }
    let mut agg = cfg.agg.clone();
    for (i, en) in agg.enabled.iter_mut().enumerate() {
        *en = plan.venues.iter().any(|s| s.venue().index() == i);
    }
    let out = depthagg::output::OutputOptions {
        csv_path: cfg.out.clone(),
        qty_decimals: cfg.qty_decimals,
    };
    if cfg.headless {
        let mut replayer = Replayer::new(&plan, 0);
        let end = match replayer.feed_file(&args.file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(exit::BAD_INPUT);
            }
        };
        let venues = replayer.venues();
        depthagg::replay::print_report(&replayer, &mut std::io::stdout().lock())?;
        if let Some(dir) = &args.dump_books {
            for p in depthagg::replay::dump_books(&venues, dir)? {
                eprintln!("wrote {}", p.display());
            }
        }
        if explicit_out {
            let snap = depthagg::aggregate::take_snapshot(&venues, &agg, end);
            let status = depthagg::run::write_snapshot_status(snap, &out).await;
            if let Some(e) = status.error {
                eprintln!("error: {e}");
                return Ok(exit::WRITE_FAILED);
            }
            eprintln!("wrote {} ({} rows)", out.csv_path.display(), status.rows);
        }
        return Ok(exit::OK);
    }
    let controls =
        depthagg::control::Controls::new(agg, depthagg::control::Mode::Replay(args.file.clone()));
    depthagg::run::spawn_signal_handler(controls.clone());
    let replayer = Replayer::new(&plan, depthagg::feed::now_ms());
    let venues = replayer.venues();
    let feeder = tokio::spawn(depthagg::replay::feed_paced(
        replayer,
        args.file.clone(),
        speed,
        controls.clone(),
    ));
    let writer = explicit_out.then(|| {
        tokio::spawn(depthagg::run::writer_loop(
            venues.clone(),
            controls.clone(),
            out,
            std::time::Duration::from_secs(cfg.interval_secs),
        ))
    });
    let res = depthagg::tui::run(venues, controls.clone()).await;
    controls.request_shutdown();
    feeder.abort();
    if let Some(w) = writer {
        let _ = w.await;
    }
    res?;
    Ok(exit::OK)
}
