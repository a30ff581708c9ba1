//! `cairn train`: fit the models on every stored event and save them where `cairn serve` finds them.

use clap::Args;

use super::Context;

#[derive(Args)]
pub struct TrainArgs {}

pub fn run(ctx: &Context, _args: TrainArgs) -> anyhow::Result<()> {
    let engine = ctx.open_engine()?;
    let stats = engine.stats()?;
    if stats.events == 0 {
        anyhow::bail!(
            "the data directory {} holds no events; import some first (`cairn import`, or `cairn demo`)",
            engine.config().data_dir.display()
        );
    }
    eprintln!("training on {} events...", stats.events);
    let progress = crate::progress::Training::new(&engine);
    let report = engine.train_by("cli", &progress);
    progress.finish();
    let report = report?;
    println!(
        "trained model {} on {} users x {} items ({} interactions) in {:.2}s; saved to {}",
        report.version,
        report.users,
        report.items,
        report.interactions,
        report.seconds,
        report.path.display()
    );
    print_gate(&report);
    Ok(())
}

/// What the promotion gate decided about a new version, and what to do next.
pub(crate) fn print_gate(report: &cairn_engine::TrainReport) {
    if report.serving {
        println!(
            "version {} passed the promotion gate and is the champion",
            report.version
        );
    } else if report.refused.is_empty() {
        println!(
            "version {} passed the promotion gate and is the challenger (models.auto_promote is off); \
             `cairn models promote {} --reason ...` makes it serve",
            report.version, report.version
        );
    } else {
        println!(
            "version {} was REFUSED by the promotion gate and will not serve:",
            report.version
        );
        for reason in &report.refused {
            println!("  - {reason}");
        }
    }
}
