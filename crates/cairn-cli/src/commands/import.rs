//! `cairn import`: bulk-loads items, users and events from CSV or JSONL files, or a whole MovieLens
//! directory, into the data directory. Records go to the engine in batches, each batch one atomic
//! write. A bad row is either skipped and reported (`--on-error skip`) or, with `--on-error reject`,
//! the whole input is checked first and nothing is imported if any row is bad. Events without an
//! `event_id` get one derived from their content (`--dedupe content`), so importing a file twice
//! stores its events once.
//!
//! Every run ends with a summary (rows read, stored, duplicates skipped, bad rows skipped and the first
//! of them) and an exit status: [`EXIT_BAD_ROWS_SKIPPED`] when rows were skipped for being bad, 1 when
//! the import failed, 0 when every row was stored or was a duplicate.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _};
use cairn_core::{Event, Item, User, ValidationError};
use cairn_engine::rejects::Rejection;
use cairn_engine::Engine;
use cairn_import::{ByteCounter, CsvOptions, Format, MovieLens, RowError, Rows};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::ProgressBar;

use super::Context;
use crate::progress;

#[derive(Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    source: Source,
    /// What a bad row does: `skip` reports it on stderr and goes on, and the import then exits with
    /// status 3; `reject` checks the whole input first, and imports nothing and exits with status 1 if
    /// any row is bad.
    #[arg(long, value_enum, default_value_t = OnError::Skip, global = true)]
    on_error: OnError,
    /// Events without an `event_id`: `content` gives each the id of its user, item, type, value and
    /// timestamp, so that importing the same file again adds nothing (two identical events in the same
    /// second collapse into one); `none` stores every such row, again on every import.
    #[arg(long, value_enum, default_value_t = Dedupe::Content, global = true)]
    dedupe: Dedupe,
    /// The most lines one CSV row may span: a quoted cell of a free-text column (title, description,
    /// an extra column) may hold line breaks; a quote still open after this many lines is a bad row.
    #[arg(long, default_value_t = cairn_import::DEFAULT_MAX_RECORD_LINES as u32, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    max_record_lines: u32,
    /// Records per atomic write.
    #[arg(long, default_value_t = 10_000, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// Train the models once the import is done.
    #[arg(long, global = true)]
    train: bool,
}

#[derive(Subcommand)]
enum Source {
    /// Events from CSV or JSONL; their items must exist already.
    ///
    /// CSV: a header row with user_id, item_id, type and optionally value, timestamp (unix seconds or
    /// RFC 3339), event_id, recommendation_id; any other column goes into the event's context.
    /// JSONL: one event object per line, as the HTTP API takes them. Parquet: the columns `cairn
    /// export events --format parquet` writes.
    Events(FileArgs),
    /// Items from CSV or JSONL.
    ///
    /// CSV: a header row with id and optionally title, description, categories, tags, hidden,
    /// available_from, available_until, embedding (lists `|` separated); any other column becomes a
    /// property (numbers and true/false are typed). JSONL: one item object per line, as the HTTP API
    /// takes them. Parquet: the columns `cairn export items --format parquet` writes.
    Items(FileArgs),
    /// Users from CSV or JSONL.
    ///
    /// CSV: a header row with id; any other column becomes a property. JSONL: one user object per
    /// line, as the HTTP API takes them. Parquet: the columns `cairn export users --format parquet`
    /// writes.
    Users(FileArgs),
    /// A MovieLens directory: 100K, latest(-small) or 1M, recognised from its files.
    ///
    /// Imports the movies (genres as categories, tags, extras), the users where the dataset has them,
    /// and the ratings as `rating` events; MovieLens 1M pairs without a rating become `like` events.
    /// User and item factors trained elsewhere (the Spark job, docs/SPARK.md) as a new model
    /// version: the folder holds user_factors/, item_factors/ (Parquet: id, features) and
    /// manifest.json. The rest of the model set is fitted on the stored events, and the version
    /// goes through the promotion gate as a training's does. The options above do not apply.
    Factors(super::import_factors::FactorsArgs),
    Movielens {
        /// The dataset directory, e.g. ../shared/data/ml-100k.
        dir: PathBuf,
    },
}

#[derive(Args)]
struct FileArgs {
    /// The file to read.
    file: PathBuf,
    /// The file format; by default taken from the extension (.csv, .jsonl, .ndjson, .json,
    /// .parquet).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Jsonl,
    Parquet,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum OnError {
    Skip,
    Reject,
}

impl OnError {
    fn name(self) -> &'static str {
        match self {
            OnError::Skip => "skip",
            OnError::Reject => "reject",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Dedupe {
    /// An event without an id gets one made of its user, item, type, value and timestamp.
    Content,
    /// An event without an id is stored as it is.
    None,
}

impl Dedupe {
    fn name(self) -> &'static str {
        match self {
            Dedupe::Content => "content",
            Dedupe::None => "none",
        }
    }
}

/// The exit status of an import that stored the good rows and skipped bad ones (`--on-error skip`).
/// Distinct from 1 (the import failed, or `--on-error reject` found bad rows and stored nothing) and
/// 2 (the command line is wrong).
pub const EXIT_BAD_ROWS_SKIPPED: u8 = 3;

/// What is imported, with the readers for each kind of record.
enum Input {
    Items(PathBuf, Format),
    Users(PathBuf, Format),
    Events(PathBuf, Format),
    MovieLens(MovieLens),
}

impl Input {
    fn from_source(source: Source) -> anyhow::Result<Input> {
        let file = |args: FileArgs| -> anyhow::Result<(PathBuf, Format)> {
            let format = match args.format {
                Some(FormatArg::Csv) => Format::Csv,
                Some(FormatArg::Jsonl) => Format::Jsonl,
                Some(FormatArg::Parquet) => Format::Parquet,
                None => Format::from_path(&args.file)?,
            };
            Ok((args.file, format))
        };
        Ok(match source {
            Source::Items(a) => file(a).map(|(p, f)| Input::Items(p, f))?,
            Source::Users(a) => file(a).map(|(p, f)| Input::Users(p, f))?,
            Source::Events(a) => file(a).map(|(p, f)| Input::Events(p, f))?,
            Source::Movielens { dir } => Input::MovieLens(MovieLens::detect(&dir)?),
            Source::Factors(_) => bail!("`cairn import factors` is not a file of records"),
        })
    }

    fn describe(&self) -> String {
        match self {
            Input::Items(p, _) | Input::Users(p, _) | Input::Events(p, _) => {
                p.display().to_string()
            }
            Input::MovieLens(ml) => format!("{} ({})", ml.dir().display(), ml.kind().name()),
        }
    }

    fn total_bytes(&self) -> anyhow::Result<u64> {
        Ok(match self {
            Input::Items(p, _) | Input::Users(p, _) | Input::Events(p, _) => {
                cairn_import::source::file_len(p)?
            }
            Input::MovieLens(ml) => ml.total_bytes()?,
        })
    }

    fn items(&self, counter: &ByteCounter, csv: CsvOptions) -> anyhow::Result<Option<Rows<Item>>> {
        Ok(match self {
            Input::Items(p, f) => Some(cairn_import::read_items(p, *f, counter, csv)?),
            Input::MovieLens(ml) => Some(Box::new(ml.items(counter)?.into_iter())),
            _ => None,
        })
    }

    fn users(&self, counter: &ByteCounter, csv: CsvOptions) -> anyhow::Result<Option<Rows<User>>> {
        Ok(match self {
            Input::Users(p, f) => Some(cairn_import::read_users(p, *f, counter, csv)?),
            Input::MovieLens(ml) => Some(ml.users(counter)?),
            _ => None,
        })
    }

    fn events(
        &self,
        counter: &ByteCounter,
        csv: CsvOptions,
    ) -> anyhow::Result<Option<Rows<Event>>> {
        Ok(match self {
            Input::Events(p, f) => Some(cairn_import::read_events(p, *f, counter, csv)?),
            Input::MovieLens(ml) => Some(ml.events(counter)?),
            _ => None,
        })
    }

    fn event_file(&self, event: &Event) -> PathBuf {
        match self {
            Input::MovieLens(ml) => ml.event_file(event),
            Input::Items(p, _) | Input::Users(p, _) | Input::Events(p, _) => p.clone(),
        }
    }
}

/// Counts of one import.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// Rows read from the input, good or bad.
    pub rows: usize,
    pub items: usize,
    pub users: usize,
    pub events: usize,
    /// Events not stored because an event with the same id (given, or derived from the content) was
    /// stored before or earlier in the input.
    pub duplicates: usize,
    pub bad_rows: usize,
    /// The first [`SUMMARY_BAD_ROWS`] bad rows, for the summary.
    pub first_bad_rows: Vec<RowError>,
}

impl ImportSummary {
    /// Prints the summary of an import on stdout: the counts, then the first bad rows.
    fn print(&self, heading: &str) {
        println!("{heading}");
        println!("  rows read:          {}", self.rows);
        println!("  items stored:       {}", self.items);
        println!("  users stored:       {}", self.users);
        println!("  events stored:      {}", self.events);
        println!("  duplicates skipped: {}", self.duplicates);
        println!("  bad rows skipped:   {}", self.bad_rows);
        self.print_first_bad_rows();
    }

    /// Prints what a check (`--on-error reject`) found on stdout.
    fn print_check(&self, heading: &str) {
        println!("{heading}");
        println!("  rows read:          {}", self.rows);
        println!("  bad rows:           {}", self.bad_rows);
        self.print_first_bad_rows();
    }

    fn print_first_bad_rows(&self) {
        if !self.first_bad_rows.is_empty() {
            let shown = self.first_bad_rows.len();
            if shown < self.bad_rows {
                println!("  the first {shown} of them:");
            }
            for error in &self.first_bad_rows {
                println!("    {error}");
            }
        }
    }
}

/// Bad rows the summary repeats; every bad row (up to [`MAX_PRINTED_BAD_ROWS`]) is printed on stderr
/// as it is read.
const SUMMARY_BAD_ROWS: usize = 5;

pub fn run(ctx: &Context, args: ImportArgs) -> anyhow::Result<ExitCode> {
    if let Source::Factors(factors) = args.source {
        super::import_factors::run(ctx, factors)?;
        return Ok(ExitCode::SUCCESS);
    }
    let input = Input::from_source(args.source)?;
    let engine = ctx.open_engine()?;
    let started = Instant::now();
    let settings = Settings {
        batch_size: args.batch_size as usize,
        on_error: args.on_error,
        dedupe: args.dedupe,
        csv: CsvOptions {
            max_record_lines: args.max_record_lines as usize,
        },
    };
    let options = format!(
        "on error: {}, dedupe: {}",
        args.on_error.name(),
        args.dedupe.name()
    );
    if args.on_error == OnError::Reject {
        let checked = Pass::new(&engine, &input, Mode::Check, settings)?.run()?;
        if checked.bad_rows > 0 {
            checked.print_check(&format!(
                "checked {} ({options}); nothing was stored",
                input.describe()
            ));
            bail!(
                "{} bad row(s) in {}; nothing was imported (fix them, or pass --on-error skip to import the good rows)",
                checked.bad_rows,
                input.describe()
            );
        }
    }
    let summary = Pass::new(&engine, &input, Mode::Write, settings)?.run()?;
    summary.print(&format!(
        "imported {} in {:.1}s ({options})",
        input.describe(),
        started.elapsed().as_secs_f64(),
    ));
    if args.train {
        let progress = crate::progress::Training::new(&engine);
        let report = engine.train_by("cli", &progress);
        progress.finish();
        let report = report.context("training after the import")?;
        println!(
            "trained model {} on {} users, {} items, {} interactions in {:.1}s",
            report.version, report.users, report.items, report.interactions, report.seconds
        );
    }
    if summary.bad_rows > 0 {
        eprintln!(
            "{} bad row(s) skipped (see above); the other rows were imported. Exit status {EXIT_BAD_ROWS_SKIPPED}.",
            summary.bad_rows
        );
        return Ok(ExitCode::from(EXIT_BAD_ROWS_SKIPPED));
    }
    Ok(ExitCode::SUCCESS)
}

/// How rows become records in the store.
#[derive(Clone, Copy)]
struct Settings {
    batch_size: usize,
    on_error: OnError,
    dedupe: Dedupe,
    csv: CsvOptions,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Read and check every row, store nothing.
    Check,
    /// Store the good rows in batches.
    Write,
}

/// Bad rows written to the log of rejected input at once, at most.
const REJECTED_PER_WRITE: usize = 1000;

/// Most bad rows printed; the rest are only counted, so that a wrong file does not flood the terminal.
const MAX_PRINTED_BAD_ROWS: usize = 1000;

/// One reading of the whole input: items, then users, then events (events are checked against the
/// catalog, so their items must come first).
struct Pass<'a> {
    engine: &'a Engine,
    input: &'a Input,
    mode: Mode,
    settings: Settings,
    counter: ByteCounter,
    bar: ProgressBar,
    /// Items of this input seen in a check pass, which the catalog does not hold yet.
    pending_items: HashSet<String>,
    summary: ImportSummary,
    /// Bad rows not yet written to the data directory's log of rejected input (the dashboard's
    /// data-quality page), written with each stored batch and at the end.
    rejected: Vec<Rejection>,
}

impl<'a> Pass<'a> {
    fn new(
        engine: &'a Engine,
        input: &'a Input,
        mode: Mode,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let label = match mode {
            Mode::Check => "checking",
            Mode::Write => "importing",
        };
        Ok(Pass {
            engine,
            input,
            mode,
            settings,
            counter: ByteCounter::new(),
            bar: progress::bytes(input.total_bytes()?, label),
            pending_items: HashSet::new(),
            summary: ImportSummary::default(),
            rejected: Vec::new(),
        })
    }

    fn run(mut self) -> anyhow::Result<ImportSummary> {
        let csv = self.settings.csv;
        if let Some(rows) = self.input.items(&self.counter, csv)? {
            self.items(rows)?;
        }
        if let Some(rows) = self.input.users(&self.counter, csv)? {
            self.users(rows)?;
        }
        if let Some(rows) = self.input.events(&self.counter, csv)? {
            self.events(rows)?;
        }
        self.record_rejected();
        self.bar.finish_and_clear();
        if self.summary.bad_rows > MAX_PRINTED_BAD_ROWS {
            eprintln!(
                "... and {} more bad rows not shown",
                self.summary.bad_rows - MAX_PRINTED_BAD_ROWS
            );
        }
        Ok(self.summary)
    }

    /// Writes the bad rows not yet written to the log of rejected input.
    fn record_rejected(&mut self) {
        self.engine
            .record_rejections(&std::mem::take(&mut self.rejected));
    }

    /// Counts, prints and records a bad row (`code`: `bad_row` when it could not be read,
    /// `invalid_argument` when the engine's check refused it). Writing with `--on-error reject`, a
    /// bad row (one the check pass did not see: the input changed since) stops the import before
    /// the batch holding it is stored.
    fn bad(&mut self, error: RowError, code: &str) -> anyhow::Result<()> {
        self.rejected.push(Rejection::row(
            &error.file,
            error.line,
            code,
            &error.message,
        ));
        if self.rejected.len() >= REJECTED_PER_WRITE {
            self.record_rejected();
        }
        if self.mode == Mode::Write && self.settings.on_error == OnError::Reject {
            self.record_rejected();
            self.bar.finish_and_clear();
            bail!(
                "{error}\nthe import stopped at this row, which the check before it found good (did the input change?); {} items, {} users and {} events were stored before it, nothing of the batch holding it",
                self.summary.items,
                self.summary.users,
                self.summary.events
            );
        }
        self.summary.bad_rows += 1;
        if self.summary.bad_rows <= MAX_PRINTED_BAD_ROWS {
            self.bar.suspend(|| eprintln!("{error}"));
        }
        if self.summary.first_bad_rows.len() < SUMMARY_BAD_ROWS {
            self.summary.first_bad_rows.push(error);
        }
        Ok(())
    }

    /// Counts row `rows` (0-based) as read and moves the progress bar now and then.
    fn tick(&mut self, rows: usize) {
        self.summary.rows += 1;
        // Reading the counter is cheap, but redrawing is not worth doing for every row.
        if rows.is_multiple_of(1024) {
            self.bar.set_position(self.counter.get());
        }
    }

    fn items(&mut self, rows: Rows<Item>) -> anyhow::Result<()> {
        let mut batch = Vec::with_capacity(self.settings.batch_size);
        for (n, (_, row)) in rows.enumerate() {
            self.tick(n);
            match row {
                Err(e) => self.bad(e, "bad_row")?,
                Ok(item) if self.mode == Mode::Check => {
                    self.pending_items.insert(item.id);
                }
                Ok(item) => {
                    batch.push(item);
                    if batch.len() >= self.settings.batch_size {
                        self.store_items(&mut batch)?;
                    }
                }
            }
        }
        self.store_items(&mut batch)
    }

    fn store_items(&mut self, batch: &mut Vec<Item>) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len();
        self.engine
            .put_items(std::mem::take(batch))
            .context("storing a batch of items")?;
        self.summary.items += n;
        self.record_rejected();
        self.bar.set_position(self.counter.get());
        Ok(())
    }

    fn users(&mut self, rows: Rows<User>) -> anyhow::Result<()> {
        let mut batch = Vec::with_capacity(self.settings.batch_size);
        for (n, (_, row)) in rows.enumerate() {
            self.tick(n);
            match row {
                Err(e) => self.bad(e, "bad_row")?,
                Ok(_) if self.mode == Mode::Check => {}
                Ok(user) => {
                    batch.push(user);
                    if batch.len() >= self.settings.batch_size {
                        self.store_users(&mut batch)?;
                    }
                }
            }
        }
        self.store_users(&mut batch)
    }

    fn store_users(&mut self, batch: &mut Vec<User>) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len();
        self.engine
            .put_users(std::mem::take(batch))
            .context("storing a batch of users")?;
        self.summary.users += n;
        self.record_rejected();
        self.bar.set_position(self.counter.get());
        Ok(())
    }

    fn events(&mut self, rows: Rows<Event>) -> anyhow::Result<()> {
        let mut batch = Vec::with_capacity(self.settings.batch_size);
        for (n, (line, row)) in rows.enumerate() {
            self.tick(n);
            let checked = row.map_err(|e| (e, "bad_row")).and_then(|mut event| {
                if self.settings.dedupe == Dedupe::Content && event.event_id.is_none() {
                    event.event_id = Some(event.content_id());
                }
                self.check_event(&event)
                    .map(|()| event)
                    .map_err(|(file, e)| {
                        let error = RowError::new(&file, line, format!("event {e}"));
                        (error, "invalid_argument")
                    })
            });
            match checked {
                Err((e, code)) => self.bad(e, code)?,
                Ok(_) if self.mode == Mode::Check => {}
                Ok(event) => {
                    batch.push(event);
                    if batch.len() >= self.settings.batch_size {
                        self.store_events(&mut batch)?;
                    }
                }
            }
        }
        self.store_events(&mut batch)
    }

    /// The engine's own check (type, value, item in the catalog), where an item that this input
    /// brings but a check pass has not stored yet counts as present.
    fn check_event(&self, event: &Event) -> Result<(), (PathBuf, ValidationError)> {
        match self.engine.validate_event(event) {
            Ok(()) => Ok(()),
            // Ids in `pending_items` passed validation, so an `item_id` error here means "unknown".
            Err(e) if e.field == "item_id" && self.pending_items.contains(&event.item_id) => Ok(()),
            Err(e) => Err((self.input.event_file(event), e)),
        }
    }

    fn store_events(&mut self, batch: &mut Vec<Event>) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let outcome = self
            .engine
            .add_events(std::mem::take(batch))
            .context("storing a batch of events")?;
        self.summary.events += outcome.stored;
        self.summary.duplicates += outcome.duplicates;
        self.record_rejected();
        self.bar.set_position(self.counter.get());
        Ok(())
    }
}
