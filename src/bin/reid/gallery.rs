//! `gallery`: create, fill, search and inspect durable galleries (files or databases).

use std::path::{Path, PathBuf};

use reid::formats::npy::read_npy;

/// Gallery subcommands.
#[derive(clap::Subcommand)]
pub enum GalleryCommand {
    /// Create an empty durable gallery.
    Create {
        /// The new gallery: a file, or a database (`postgres://user@host/db?gallery=NAME`).
        file: PathBuf,
        /// Embedding dimension.
        #[arg(long)]
        dim: usize,
        /// cosine or euclidean.
        #[arg(long, default_value = "cosine")]
        metric: String,
    },
    /// Add the rows of a float32 [N, D] .npy with their labels (one transaction).
    Add {
        /// The gallery: a file or a database URL.
        file: PathBuf,
        /// Embeddings [N, D].
        #[arg(long)]
        vectors: PathBuf,
        /// Identity of each row, integer [N].
        #[arg(long)]
        identities: PathBuf,
        /// Camera of each row, integer [N] (default: all 0).
        #[arg(long)]
        cameras: Option<PathBuf>,
        /// Id of each row, integer [N] (default: assigned).
        #[arg(long)]
        ids: Option<PathBuf>,
    },
    /// Search the gallery for each row of a float32 [Q, D] .npy.
    Search {
        /// The gallery: a file or a database URL.
        file: PathBuf,
        /// Queries [Q, D].
        #[arg(long)]
        queries: PathBuf,
        /// Results per query.
        #[arg(short, default_value_t = 10)]
        k: usize,
        /// Minimum similarity (cosine) or maximum distance (euclidean).
        #[arg(long)]
        min_score: Option<f32>,
        /// Only the best entry of each identity.
        #[arg(long)]
        group: bool,
        /// Skip entries of this camera.
        #[arg(long)]
        exclude_camera: Option<i32>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove one entry or a whole identity.
    Remove {
        /// The gallery: a file or a database URL.
        file: PathBuf,
        /// Entry id.
        #[arg(
            long,
            conflicts_with = "identity",
            required_unless_present = "identity"
        )]
        id: Option<u64>,
        /// Identity label.
        #[arg(long)]
        identity: Option<u64>,
    },
    /// Entries, identities, cameras, dimension and metric of a gallery.
    Stats {
        /// The gallery: a file or a database URL.
        file: PathBuf,
    },
    /// Write the gallery as .npz (vectors, ids, identities, cameras) for Python / faiss.
    Export {
        /// The gallery: a file or a database URL.
        file: PathBuf,
        /// Output .npz.
        #[arg(short, long)]
        output: PathBuf,
    },
}

impl GalleryCommand {
    /// Runs the subcommand.
    pub fn run(self) -> reid::Result<()> {
        use reid::gallery::{Gallery, SearchOptions};
        match self {
            GalleryCommand::Create { file, dim, metric } => {
                Gallery::create(&file, dim, metric.parse()?)?;
                println!("created {} ({dim}-d, {metric})", file.display());
            }
            GalleryCommand::Add {
                file,
                vectors,
                identities,
                cameras,
                ids,
            } => {
                let gallery = Gallery::open(&file)?;
                let vectors = read_npy(&vectors)?;
                let n = vectors.shape.first().copied().unwrap_or(0);
                let identities: Vec<u64> = int_column(&identities, n)?
                    .iter()
                    .map(|&v| v as u64)
                    .collect();
                let cameras: Vec<i32> = match cameras {
                    Some(path) => int_column(&path, n)?.iter().map(|&v| v as i32).collect(),
                    None => vec![0; n],
                };
                let ids: Option<Vec<u64>> = ids
                    .map(|path| int_column(&path, n).map(|v| v.iter().map(|&i| i as u64).collect()))
                    .transpose()?;
                let added = gallery.add_arrays(&vectors, ids.as_deref(), &identities, &cameras)?;
                println!(
                    "added {} entries; {} in the gallery",
                    added.len(),
                    gallery.len()?
                );
            }
            GalleryCommand::Search {
                file,
                queries,
                k,
                min_score,
                group,
                exclude_camera,
                json,
            } => {
                let gallery = Gallery::open(&file)?;
                let queries = read_npy(&queries)?;
                let options = SearchOptions {
                    k,
                    min_score,
                    group_by_identity: group,
                    exclude_camera,
                };
                let results = gallery.search(&queries.to_f32(), &options)?;
                if json {
                    let value: Vec<Vec<serde_json::Value>> = results
                        .iter()
                        .map(|matches| {
                            matches
                                .iter()
                                .map(|m| {
                                    serde_json::json!({"id": m.id, "identity": m.identity,
                                        "camera": m.camera, "score": m.score})
                                })
                                .collect()
                        })
                        .collect();
                    println!("{}", serde_json::Value::from(value));
                } else {
                    for (q, matches) in results.iter().enumerate() {
                        println!("query {q}:");
                        for m in matches {
                            println!(
                                "  id {:>8}  identity {:>8}  camera {:>3}  score {:.6}",
                                m.id, m.identity, m.camera, m.score
                            );
                        }
                    }
                }
            }
            GalleryCommand::Remove { file, id, identity } => {
                let gallery = Gallery::open(&file)?;
                match (id, identity) {
                    (Some(id), _) => {
                        gallery.remove(id)?;
                        println!("removed entry {id}");
                    }
                    (None, Some(identity)) => {
                        let n = gallery.remove_identity(identity)?;
                        println!("removed {n} entries of identity {identity}");
                    }
                    (None, None) => unreachable!("clap requires one of them"),
                }
            }
            GalleryCommand::Stats { file } => {
                let gallery = Gallery::open(&file)?;
                let entries = gallery.entries()?;
                let identities: std::collections::BTreeSet<u64> =
                    entries.iter().map(|e| e.identity).collect();
                let cameras: std::collections::BTreeSet<i32> =
                    entries.iter().map(|e| e.camera).collect();
                println!("entries: {}", entries.len());
                println!("identities: {}", identities.len());
                println!("cameras: {:?}", cameras);
                println!("dimension: {}", gallery.dim());
                println!("metric: {:?}", gallery.metric());
            }
            GalleryCommand::Export { file, output } => {
                let gallery = Gallery::open(&file)?;
                gallery.export_npz(&output)?;
                println!("wrote {} entries to {}", gallery.len()?, output.display());
            }
        }
        Ok(())
    }
}

fn int_column(path: &Path, n: usize) -> reid::Result<Vec<i64>> {
    let values = read_npy(path)?.to_i64()?;
    if values.len() != n {
        return Err(reid::Error::InvalidInput(format!(
            "{} holds {} values for {n} vectors",
            path.display(),
            values.len()
        )));
    }
    Ok(values)
}
