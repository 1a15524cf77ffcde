//! The command line: `vrooli [--config PATH] <serve [--port N] | migrate | seed>`, and the hidden
//! `vrooli sandbox` a node starts for each `code` step (`src/sandbox/`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "vrooli",
    version,
    about = "The Vrooli server: chats, bots and runs, live"
)]
pub struct Cli {
    /// Settings file layered over the built-in defaults (default: ./config.toml when present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate, seed, and serve HTTP until SIGTERM/SIGINT.
    Serve {
        /// Port to listen on (overrides server.port).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Apply migrations and the idempotent seed (admin, Valyxa, team Vrooli), then exit.
    Seed,
    /// Run one script: a request on stdin, the reply on stdout (started by a node, not by hand).
    #[command(hide = true)]
    Sandbox,
}
