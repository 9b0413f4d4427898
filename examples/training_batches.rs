//! The training batches `reid train` draws for a config — each image decoded, augmented and
//! normalized, with its label — written to stdout epoch by epoch, so that another trainer can
//! train on reid's exact inputs: `tests/compare/compare_seeds.py`'s `torchreid_replay` side runs
//! torchreid on them, which tells reid's data streams (sampler and augmentation draws) apart from
//! its arithmetic.
//!
//!     cargo run --release --example training_batches -- [--order] [CONFIG.yaml] [section.key=value ...]
//!
//! The same arguments as `reid train` (a config file first, if any, then overrides); image
//! re-id with `RandomSampler` or `SequentialSampler` and one augmented copy per image, as the
//! comparisons train. The stream, little-endian, for every epoch in turn and every batch of it:
//! the number of images `n` (u32), `n` labels (i64), then `n × 3 × height × width` floats
//! (f32). A summary goes to stderr.
//!
//! `--order` writes the sampler's order alone, as text: the number of training images, their
//! paths one per line, then one line per epoch of the images' positions in that list (the
//! trainer keeps the whole batches of it) — for a trainer that augments on its own.

use std::io::Write;
use std::path::Path;

use reid::data::dataset::combine_train;
use reid::data::reid::load_dataset_split;
use reid::data::sampler::Sampler;
use reid::data::transforms::Augment;
use reid::device::default_device;
use reid::train::loader::training_batch;
use reid::{Error, Result};

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let order_only = args.first().is_some_and(|a| a == "--order");
    if order_only {
        args.remove(0);
    }
    let file = (args.first().is_some_and(|a| !a.contains('='))).then(|| args.remove(0));
    let config = reid::config::load_train_config(file.as_deref().map(Path::new), &args)?;
    let data = &config.data;
    let sampler: Sampler = config.sampler.name.parse()?;
    if !matches!(sampler, Sampler::Random | Sampler::Sequential)
        || data.packages != 1
        || data.transform_sections.is_some()
        || data.combineall
    {
        return Err(Error::InvalidInput(
            "training_batches replays RandomSampler or SequentialSampler batches of one copy \
             per image, with `data.transforms` (no transform sections, no combineall)"
                .into(),
        ));
    }
    let sources = data
        .sources
        .iter()
        .map(|name| load_dataset_split(name, &data.root, data.split_id))
        .collect::<Result<Vec<_>>>()?;
    let samples = combine_train(&sources);
    let augment = Augment::from_names(&data.transforms)?;
    let preprocessing = data.test_preprocessing();
    let (batch_size, device) = (config.sampler.batch_size, default_device());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let failed = |e: std::io::Error| Error::Runtime(format!("writing the batches: {e}"));
    if order_only {
        writeln!(out, "{}", samples.len()).map_err(failed)?;
        for sample in &samples {
            writeln!(out, "{}", sample.path.display()).map_err(failed)?;
        }
        for epoch in 0..config.schedule.max_epoch {
            let order = sampler.epoch(&samples, batch_size, config.seed, epoch)?;
            let line: Vec<String> = order.iter().map(usize::to_string).collect();
            writeln!(out, "{}", line.join(" ")).map_err(failed)?;
        }
        return out.flush().map_err(failed);
    }
    let mut batches = 0;
    for epoch in 0..config.schedule.max_epoch {
        let order = sampler.epoch(&samples, batch_size, config.seed, epoch)?;
        // As the trainer does: full batches only.
        for indices in order.chunks_exact(batch_size) {
            let (images, labels) = training_batch(
                &samples,
                indices,
                &preprocessing,
                &augment,
                config.seed,
                epoch,
                &device,
            )?;
            let labels = labels.into_data().convert::<i64>().try_to_vec::<i64>();
            let images = images.into_data().try_to_vec::<f32>();
            let (labels, images) = (
                labels.map_err(|e| Error::Runtime(format!("{e:?}")))?,
                images.map_err(|e| Error::Runtime(format!("{e:?}")))?,
            );
            let write = |out: &mut dyn Write| -> std::io::Result<()> {
                out.write_all(&(indices.len() as u32).to_le_bytes())?;
                labels
                    .iter()
                    .try_for_each(|l| out.write_all(&l.to_le_bytes()))?;
                images
                    .iter()
                    .try_for_each(|v| out.write_all(&v.to_le_bytes()))
            };
            write(&mut out).map_err(failed)?;
            batches += 1;
        }
    }
    out.flush().map_err(failed)?;
    eprintln!(
        "{batches} batches of {batch_size} from {} training images over {} epochs",
        samples.len(),
        config.schedule.max_epoch
    );
    Ok(())
}
