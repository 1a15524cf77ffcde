//! The `vrooli` binary: parse the CLI, load and validate settings, start logging, then hand over
//! to the library (`Application` for `serve`, `db` for `migrate`, `startup::seed` for `seed`).

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use vrooli::cli::{Cli, Command};
use vrooli::config::{Settings, Sources};
use vrooli::startup::{Application, acquire_lease, seed, step};
use vrooli::{db, ids::Snowflake, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A sandbox child reads no settings and logs nothing: its parent gave it all it needs.
    if matches!(cli.command, Command::Sandbox) {
        return vrooli::sandbox::child::main();
    }
    let start = Instant::now();
    let port = match cli.command {
        Command::Serve { port } => port,
        _ => None,
    };
    let settings = match Settings::load(&Sources {
        file: cli.config.clone(),
        port,
    }) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("vrooli: {error}");
            return ExitCode::from(2);
        }
    };
    let _log = telemetry::init(&settings.log, settings.node.worker_id);
    tracing::info!(
        step = "config",
        elapsed_ms = start.elapsed().as_secs_f64() * 1000.0,
        version = env!("CARGO_PKG_VERSION"),
        "startup step finished"
    );

    // actix-web's runtime: a System on this thread (actors need one), HTTP workers on their own.
    let result = actix_web::rt::System::new().block_on(async move {
        match cli.command {
            Command::Serve { .. } => {
                let app = Application::build(settings).await?;
                app.run_until_stopped().await?;
            }
            Command::Migrate => {
                let pool = step("postgres", db::connect(&settings.database)).await?;
                step("migrations", db::migrate(&pool)).await?;
                pool.close().await;
            }
            Command::Seed => {
                let ids = Snowflake::new(settings.node.worker_id)?;
                let pool = step("postgres", db::connect(&settings.database)).await?;
                step("migrations", db::migrate(&pool)).await?;
                // The seed makes ids, so it needs the worker id to itself like any node.
                let lease = step("node-lease", acquire_lease(&pool, &settings)).await?;
                let report = step("seed", seed::run(&pool, &ids, &settings.seed)).await?;
                tracing::info!(inserted = report.inserted, "seed applied");
                lease.release().await;
                pool.close().await;
            }
            Command::Sandbox => unreachable!("handled before the settings are loaded"),
        }
        Ok::<_, anyhow::Error>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "vrooli exited with an error");
            eprintln!("vrooli: {error:#}");
            ExitCode::FAILURE
        }
    }
}
