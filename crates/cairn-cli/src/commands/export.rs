//! `cairn export items|users|events|interactions`: JSON lines or Parquet. Items, users and events
//! are written so that `cairn import` reads them back as they were; interactions are the training
//! snapshot `cairn train` builds (user, item, signed strength, timestamp), for training elsewhere
//! (Spark, pandas).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use cairn_engine::backup::{ExportKind, Exported};
use cairn_engine::Engine;
use cairn_import::parquet_files::{Interaction, ParquetRecord, ParquetWriter};
use cairn_import::ImportError;
use clap::{Args, ValueEnum};

use super::Context;

#[derive(Clone, Copy, ValueEnum)]
enum What {
    Items,
    Users,
    Events,
    /// The training snapshot: one row per event of a known type, as (user_id, item_id, strength,
    /// timestamp), strength being the event type's signed weight.
    Interactions,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Jsonl,
    Parquet,
}

#[derive(Args)]
pub struct ExportArgs {
    what: What,
    /// Write here instead of standard output (Parquet needs a file).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// `jsonl` (one JSON object per line) or `parquet` (snappy-compressed columns); by default
    /// taken from the extension of --out (.parquet), else jsonl.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Interactions only: leave out the promotion gate's held-out events (`models.holdout_*`), so
    /// that a model trained elsewhere on the export (docs/SPARK.md) is gated on events it has not
    /// seen. Without it the whole log is written.
    #[arg(long)]
    without_holdout: bool,
}

pub fn run(ctx: &Context, args: ExportArgs) -> anyhow::Result<()> {
    let format = args.format.unwrap_or_else(|| {
        let parquet = args
            .out
            .as_deref()
            .and_then(Path::extension)
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
        if parquet {
            FormatArg::Parquet
        } else {
            FormatArg::Jsonl
        }
    });
    if args.without_holdout && !matches!(args.what, What::Interactions) {
        bail!("--without-holdout applies to `cairn export interactions` only");
    }
    let engine = ctx.open_engine()?;
    let holdout = !args.without_holdout;
    let n = match format {
        FormatArg::Jsonl => jsonl(&engine, args.what, args.out.as_deref(), holdout)?,
        FormatArg::Parquet => {
            let Some(out) = args.out.as_deref() else {
                bail!("--format parquet writes a file: pass --out FILE.parquet");
            };
            parquet(&engine, args.what, out, holdout)?
        }
    };
    eprintln!("exported {n} rows");
    Ok(())
}

fn jsonl(engine: &Engine, what: What, out: Option<&Path>, holdout: bool) -> anyhow::Result<u64> {
    let mut writer: Box<dyn Write> = match out {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let n = match kind(what) {
        Some(kind) => engine.export(kind, &mut writer)?,
        None => {
            let mut n = 0;
            for row in interactions(engine, holdout)? {
                let line = serde_json::json!({
                    "user_id": row.user_id,
                    "item_id": row.item_id,
                    "strength": row.strength,
                    "timestamp": row.timestamp,
                });
                serde_json::to_writer(&mut writer, &line)?;
                writer.write_all(b"\n")?;
                n += 1;
            }
            n
        }
    };
    writer.flush().context("writing the export")?;
    Ok(n)
}

fn parquet(engine: &Engine, what: What, out: &Path, holdout: bool) -> anyhow::Result<u64> {
    let Some(kind) = kind(what) else {
        let mut writer = ParquetWriter::<Interaction>::create(out)?;
        for row in interactions(engine, holdout)? {
            writer.write(row)?;
        }
        return Ok(writer.finish()?);
    };
    match kind {
        ExportKind::Items => records(engine, kind, out, |r| match r {
            Exported::Item(item) => Some(item),
            _ => None,
        }),
        ExportKind::Users => records(engine, kind, out, |r| match r {
            Exported::User(user) => Some(user),
            _ => None,
        }),
        ExportKind::Events => records(engine, kind, out, |r| match r {
            Exported::Event(event) => Some(event),
            _ => None,
        }),
    }
}

/// Writes every record of `kind` to a Parquet file at `out`.
fn records<T: ParquetRecord>(
    engine: &Engine,
    kind: ExportKind,
    out: &Path,
    pick: fn(Exported) -> Option<T>,
) -> anyhow::Result<u64> {
    let mut writer = ParquetWriter::<T>::create(out)?;
    let mut failed: Option<ImportError> = None;
    engine.export_each(kind, &mut |record| match pick(record) {
        Some(record) => match writer.write(record) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        },
        None => true,
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok(writer.finish()?)
}

fn kind(what: What) -> Option<ExportKind> {
    match what {
        What::Items => Some(ExportKind::Items),
        What::Users => Some(ExportKind::Users),
        What::Events => Some(ExportKind::Events),
        What::Interactions => None,
    }
}

/// The snapshot `cairn train` reads, with its ids spelled out, in log order; without the gate's
/// held-out events unless `holdout`.
fn interactions(
    engine: &Engine,
    holdout: bool,
) -> anyhow::Result<impl Iterator<Item = Interaction>> {
    let snapshot = if holdout {
        engine.training_snapshot()
    } else {
        engine.training_snapshot_without_holdout()
    }
    .context("reading the training snapshot")?;
    Ok((0..snapshot.events.len()).map(move |k| {
        let (u, i, strength, timestamp) = snapshot.events[k];
        Interaction {
            user_id: snapshot.users.id(u).to_string(),
            item_id: snapshot.items.id(i).to_string(),
            strength,
            timestamp,
        }
    }))
}
