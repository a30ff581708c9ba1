//! The serving-latency benchmark: `serve-setup` builds a data directory with a synthetic shop and a
//! trained model set for `cairn serve`; `load` drives the running server over loopback and reports
//! latency percentiles and throughput (see docs/bench/serving.md and scripts/serve-load.sh); `soak`
//! finds the peak of a mixed read/write workload, then holds a share of it for a long time with
//! trainings forced every minute, sampling the server's memory (docs/reliability/soak.md).

mod client;
mod http;
mod load;
mod proc_stats;
mod profile;
mod setup;
mod soak;
mod stats;
mod synth;

pub use load::{run as load, LoadArgs};
pub use profile::{run as profile, ProfileArgs};
pub use setup::{run as setup, SetupArgs};
pub use soak::{run as soak, SoakArgs};
