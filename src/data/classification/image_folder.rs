//! Classification data in torchvision's ImageFolder layout: `ROOT/<class>/<image>`, classes
//! numbered in sorted order.

use std::path::{Path, PathBuf};

use crate::data::files::{folder_name, image_files, subfolders};
use crate::error::{Error, Result};

/// A classification dataset: images with class labels, and the class names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFolder {
    /// `(image, class)` pairs.
    pub samples: Vec<(PathBuf, usize)>,
    /// Class names (folder names), indexed by label.
    pub classes: Vec<String>,
}

/// Reads `root/<class>/<image>` (torchvision's ImageFolder order: classes sorted by name).
pub fn image_folder(root: &Path) -> Result<ImageFolder> {
    let mut out = ImageFolder::default();
    for (label, class) in subfolders(root)?.into_iter().enumerate() {
        out.classes.push(folder_name(&class));
        out.samples
            .extend(image_files(&class)?.into_iter().map(|p| (p, label)));
    }
    if out.samples.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{}: no images in class folders",
            root.display()
        )));
    }
    Ok(out)
}
