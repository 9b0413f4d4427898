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
        /// When each row was seen, float [N, 2]: start and end in seconds (a row of NaN: no
        /// time), for `search --window`.
        #[arg(long)]
        times: Option<PathBuf>,
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
        /// Only entries seen between these two times (seconds, the gallery's clock).
        #[arg(long, num_args = 2, value_names = ["START", "END"])]
        window: Option<Vec<f64>>,
        /// Keep only matches past the gallery's calibrated threshold (`gallery calibrate`).
        #[arg(long, conflicts_with = "min_score")]
        calibrated: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Find the score threshold that accepts a target share of different-identity pairs of a
    /// labelled set (every pair of its rows), and keep it in the gallery for `search
    /// --calibrated`.
    Calibrate {
        /// The gallery: a file or a database URL.
        file: PathBuf,
        /// Labelled embeddings [N, D] (at most 5,000 rows).
        #[arg(long)]
        vectors: PathBuf,
        /// Identity of each row, integer [N].
        #[arg(long)]
        identities: PathBuf,
        /// The false-accept rate to meet, between 0 and 1.
        #[arg(long, default_value_t = 0.001)]
        far: f64,
    },
    /// Embed every entry's kept crop with a new model (after a finetune) and replace every
    /// embedding, the model's fingerprint and its calibration at once.
    Reembed {
        /// The gallery: a file or a database URL.
        file: PathBuf,
        /// The new model: .onnx (ONNX Runtime, OpenVINO or Burn) or a checkpoint (Burn engine).
        #[arg(long)]
        model: PathBuf,
        /// onnxruntime, openvino or burn.
        #[arg(long, default_value = "onnxruntime")]
        engine: String,
        /// Architecture of a torchreid weight file (Burn engine).
        #[arg(long)]
        arch: Option<String>,
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
    /// Time exact search of a gallery and, in a database, approximate search through its HNSW
    /// index with the recall of each `ef_search` against the exact results.
    Bench {
        /// The gallery: a file or a database URL.
        file: PathBuf,
        /// Queries [Q, D].
        #[arg(long)]
        queries: PathBuf,
        /// Results per query (recall is counted over these).
        #[arg(short, default_value_t = 10)]
        k: usize,
        /// `ef_search` values for a database gallery's approximate search.
        #[arg(long, value_delimiter = ',', default_values_t = [40, 100, 200])]
        ef: Vec<u32>,
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
                times,
            } => {
                let gallery = Gallery::open(&file)?;
                let (vectors, identities) = labelled(&vectors, &identities)?;
                let n = identities.len();
                let cameras: Vec<i32> = match cameras {
                    Some(path) => int_column(&path, n)?.iter().map(|&v| v as i32).collect(),
                    None => vec![0; n],
                };
                let ids: Option<Vec<u64>> = ids
                    .map(|path| int_column(&path, n).map(|v| v.iter().map(|&i| i as u64).collect()))
                    .transpose()?;
                let times = times.map(|path| read_npy(&path)).transpose()?;
                let added = gallery.add_arrays(
                    &vectors,
                    ids.as_deref(),
                    &identities,
                    &cameras,
                    times.as_ref(),
                )?;
                println!(
                    "added {} entries; {} in the gallery",
                    added.len(),
                    gallery.len()?
                );
            }
            GalleryCommand::Reembed {
                file,
                model,
                engine,
                arch,
            } => {
                let gallery = Gallery::open(&file)?;
                let options = reid::ExtractorOptions {
                    engine: engine.parse()?,
                    arch: arch.map(|a| a.parse()).transpose()?,
                    ..Default::default()
                };
                let extractor = reid::Extractor::new(&model, &options)?;
                let count =
                    gallery.reembed(extractor.fingerprint(), extractor.calibration(), |crops| {
                        extractor.extract_encoded(crops)
                    })?;
                println!(
                    "re-embedded {count} entries with model {}",
                    extractor.fingerprint()
                );
            }
            GalleryCommand::Search {
                file,
                queries,
                k,
                min_score,
                group,
                exclude_camera,
                window,
                calibrated,
                json,
            } => {
                let gallery = Gallery::open(&file)?;
                let queries = read_npy(&queries)?;
                let options = SearchOptions {
                    k,
                    min_score,
                    group_by_identity: group,
                    exclude_camera,
                    time_window: window.map(|w| reid::gallery::TimeSpan {
                        start: w[0],
                        end: w[1],
                    }),
                    calibrated,
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
            GalleryCommand::Calibrate {
                file,
                vectors,
                identities,
                far,
            } => {
                let gallery = Gallery::open(&file)?;
                let (vectors, identities) = labelled(&vectors, &identities)?;
                let c = gallery.calibrate(&vectors.to_f32(), &identities, far)?;
                println!("{}; kept in the gallery", describe(&c)?);
            }
            GalleryCommand::Bench {
                file,
                queries,
                k,
                ef,
            } => bench(&file, &queries, k, &ef)?,
            GalleryCommand::Export { file, output } => {
                let gallery = Gallery::open(&file)?;
                gallery.export_npz(&output)?;
                println!("wrote {} entries to {}", gallery.len()?, output.display());
            }
        }
        Ok(())
    }
}

/// `reid gallery bench`: queries per second of exact search (the whole batch in one call, then
/// one query per call) and, for a database, of approximate search with its recall@k.
fn bench(location: &Path, queries: &Path, k: usize, efs: &[u32]) -> reid::Result<()> {
    use std::time::Instant;

    use reid::gallery::{Gallery, Location, Match, SearchOptions};

    let gallery = Gallery::open(location)?;
    let queries = read_npy(queries)?.to_f32();
    let dim = gallery.dim();
    let n = queries.len() / dim.max(1);
    if n == 0 || queries.len() != n * dim {
        return Err(reid::Error::InvalidInput(format!(
            "the queries are not a [Q, {dim}] array"
        )));
    }
    let options = SearchOptions::top(k);
    println!(
        "gallery: {} entries, {dim}-d, {:?}; {n} queries, top {k}",
        gallery.len()?,
        gallery.metric()
    );
    // Warm the caches (the database's shared buffers, the page cache) before timing.
    gallery.search(&queries[..dim], &options)?;
    let started = Instant::now();
    let exact = gallery.search(&queries, &options)?;
    let rate = |started: Instant| n as f64 / started.elapsed().as_secs_f64();
    println!(
        "exact, {n} queries in one call: {:.1} queries/s",
        rate(started)
    );
    let started = Instant::now();
    for q in queries.chunks(dim) {
        gallery.search(q, &options)?;
    }
    println!("exact, one query per call: {:.1} queries/s", rate(started));
    let Location::Database(url) = Location::parse(location)? else {
        return Ok(());
    };
    let ids = |m: &[Match]| {
        m.iter()
            .map(|m| m.id)
            .collect::<std::collections::HashSet<_>>()
    };
    for &ef in efs {
        let sep = if url.contains('?') { '&' } else { '?' };
        let approximate = Gallery::open(format!("{url}{sep}ef_search={ef}"))?;
        approximate.search(&queries[..dim], &options)?;
        let started = Instant::now();
        let found = approximate.search(&queries, &options)?;
        let speed = rate(started);
        let (hits, wanted) = found.iter().zip(&exact).fold((0, 0), |(h, w), (f, e)| {
            (h + ids(f).intersection(&ids(e)).count(), w + e.len())
        });
        println!(
            "approximate (HNSW), ef_search {ef}: {speed:.1} queries/s, recall@{k} {:.3}",
            hits as f64 / wanted.max(1) as f64
        );
    }
    Ok(())
}

/// Embeddings [N, D] and the identity of each row.
/// What a calibration found, in words.
fn describe(c: &reid::calibration::Calibration) -> reid::Result<String> {
    Ok(format!(
        "threshold {} ({} {}): false-accept rate {:.6} (target {}), true-accept rate {:.4}, on \
         {} same-identity and {} different-identity pairs",
        c.threshold,
        c.metric,
        if c.metric()? == reid::distance::Metric::Cosine {
            "similarity at least"
        } else {
            "distance at most"
        },
        c.far,
        c.target_far,
        c.tar,
        c.genuine_pairs,
        c.impostor_pairs
    ))
}

/// Arguments of `calibrate`.
#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// The model's ONNX file: the threshold is written into its metadata (its graph, weights
    /// and fingerprint are unchanged), where extractors of it find it.
    pub model: PathBuf,
    /// The model's embeddings of a labelled set [N, D] (at most 5,000 rows; compared by cosine
    /// similarity, as the model's galleries compare them).
    #[arg(long)]
    pub vectors: PathBuf,
    /// Identity of each row, integer [N].
    #[arg(long)]
    pub identities: PathBuf,
    /// The false-accept rate to meet, between 0 and 1.
    #[arg(long, default_value_t = 0.001)]
    pub far: f64,
    /// Also keep the threshold in this gallery (a file or a database URL).
    #[arg(long)]
    pub gallery: Option<PathBuf>,
}

impl CalibrateArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let (vectors, identities) = labelled(&self.vectors, &self.identities)?;
        let dim = vectors.shape.get(1).copied().unwrap_or(0);
        let scratch = reid::Gallery::new(dim, reid::distance::Metric::Cosine)?;
        let c = scratch.calibrate(&vectors.to_f32(), &identities, self.far)?;
        let record = serde_json::to_string(&c)
            .map_err(|e| reid::Error::InvalidInput(format!("calibration record: {e}")))?;
        reid::export::write_metadata(&self.model, &[(reid::export::CALIBRATION, record)])?;
        println!("{}; written into {}", describe(&c)?, self.model.display());
        if let Some(location) = &self.gallery {
            reid::Gallery::open(location)?.adopt_calibration(&c)?;
            println!("kept in the gallery {}", location.display());
        }
        Ok(())
    }
}

fn labelled(
    vectors: &Path,
    identities: &Path,
) -> reid::Result<(reid::formats::npy::NpyArray, Vec<u64>)> {
    let vectors = read_npy(vectors)?;
    let n = vectors.shape.first().copied().unwrap_or(0);
    let identities = int_column(identities, n)?
        .iter()
        .map(|&v| v as u64)
        .collect();
    Ok((vectors, identities))
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
