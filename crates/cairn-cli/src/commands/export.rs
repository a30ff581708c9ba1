//! `cairn export items|users|events`: JSON lines that `cairn import` reads back as they were.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use cairn_engine::backup::ExportKind;
use clap::{Args, ValueEnum};

use super::Context;

#[derive(Clone, Copy, ValueEnum)]
enum What {
    Items,
    Users,
    Events,
}

#[derive(Args)]
pub struct ExportArgs {
    what: What,
    /// Write here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: ExportArgs) -> anyhow::Result<()> {
    let engine = ctx.open_engine()?;
    let kind = match args.what {
        What::Items => ExportKind::Items,
        What::Users => ExportKind::Users,
        What::Events => ExportKind::Events,
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let n = engine.export(kind, &mut out)?;
    out.flush()?;
    eprintln!("exported {n} rows");
    Ok(())
}
