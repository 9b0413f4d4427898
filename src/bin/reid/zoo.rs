//! The pretrained models by name: `zoo list`, `zoo fetch`.

use std::path::PathBuf;

use reid::zoo::{Progress, Zoo, ZooTask, catalog, find};

use crate::progress::draw_progress;

/// `reid zoo`: the published pretrained models (listed without a subcommand), and fetching
/// them into the cache.
#[derive(clap::Args)]
pub struct ZooArgs {
    #[command(subcommand)]
    pub command: Option<ZooCommand>,
}

impl ZooArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        self.command
            .unwrap_or(ZooCommand::List(WhereArgs {
                dir: None,
                mirror: None,
            }))
            .run()
    }
}

/// The subcommands of `reid zoo`.
#[derive(clap::Subcommand)]
pub enum ZooCommand {
    /// List the pretrained models: name, architecture, training set, input size, published
    /// accuracy, and whether the cache holds the file.
    List(WhereArgs),
    /// Download models into the cache (resuming an interrupted transfer) and check them; print
    /// each file's path. A file already in the cache is checked and not downloaded again.
    Fetch(FetchArgs),
}

/// Where the cache is and where files come from.
#[derive(clap::Args)]
pub struct WhereArgs {
    /// Cache folder [default: $REID_ZOO_DIR, else $XDG_CACHE_HOME/reid/zoo, else
    /// ~/.cache/reid/zoo].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Base URL serving the files by name, instead of the published addresses [default:
    /// $REID_ZOO_MIRROR].
    #[arg(long)]
    pub mirror: Option<String>,
}

impl WhereArgs {
    fn zoo(self) -> Zoo {
        let zoo = match self.dir {
            Some(dir) => Zoo::in_dir(dir),
            None => Zoo::from_env(),
        };
        match self.mirror {
            Some(base) => zoo.with_mirror(base),
            None => zoo,
        }
    }
}

/// Arguments of `zoo fetch`.
#[derive(clap::Args)]
pub struct FetchArgs {
    /// Registry names (`reid zoo list`).
    #[arg(required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub place: WhereArgs,
}

impl ZooCommand {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        match self {
            ZooCommand::List(place) => list(&place.zoo()),
            ZooCommand::Fetch(FetchArgs { names, place }) => {
                let zoo = place.zoo();
                // Every name is checked before anything is downloaded.
                let models = names
                    .iter()
                    .map(|n| find(n))
                    .collect::<reid::Result<Vec<_>>>()?;
                for model in models {
                    let path = zoo.fetch(model, &mut |p: Progress| bar(&model.file, p))?;
                    eprintln!();
                    println!("{} {}", model.name, path.display());
                }
                Ok(())
            }
        }
    }
}

fn bar(file: &str, p: Progress) {
    const MIB: u64 = 1 << 20;
    match p.total {
        Some(total) => draw_progress(
            (p.done / MIB) as usize,
            total.div_ceil(MIB) as usize,
            &format!("MiB {file}"),
        ),
        None => eprint!("\r{} MiB {file}", p.done / MIB),
    }
}

fn list(zoo: &Zoo) -> reid::Result<()> {
    println!("cache: {}", zoo.dir().display());
    println!(
        "{:<44} {:<16} {:<10} {:<8} {:<6} accuracy (published)",
        "name", "arch", "trained on", "input", "cached"
    );
    for model in catalog() {
        let cached = match zoo.local(model) {
            Ok(Some(_)) => "yes",
            Ok(None) => "no",
            Err(_) => "BAD",
        };
        let input = format!("{}x{}", model.input[0], model.input[1]);
        let task = match model.task {
            ZooTask::Reid => model.trained_on.clone(),
            ZooTask::Imagenet => "imagenet".to_string(),
        };
        println!(
            "{:<44} {:<16} {:<10} {:<8} {:<6} {}",
            model.name,
            model.arch,
            task,
            input,
            cached,
            model.accuracy_summary()
        );
    }
    Ok(())
}
