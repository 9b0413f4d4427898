//! Query and gallery features as torchreid's tools save them: one `.npz` with `qf`, `gf`,
//! `q_pids`, `g_pids`, `q_camids`, `g_camids`.

use std::path::Path;

use super::rank::Labels;
use crate::distance::Matrix;
use crate::error::{Error, Result};
use crate::formats::npy::{NpyArray, read_npz};

/// Features and labels of a query set and a gallery.
#[derive(Debug, Clone)]
pub struct Features {
    /// Query features, one row each.
    pub queries: Matrix,
    /// Gallery features, one row each.
    pub gallery: Matrix,
    /// Identity of each query.
    pub query_ids: Vec<i64>,
    /// Identity of each gallery row.
    pub gallery_ids: Vec<i64>,
    /// Camera of each query.
    pub query_cams: Vec<i64>,
    /// Camera of each gallery row.
    pub gallery_cams: Vec<i64>,
}

impl Features {
    /// Reads torchreid's names from an `.npz`; every label array must have one value per row.
    pub fn read_npz(path: &Path) -> Result<Self> {
        let arrays = read_npz(path)?;
        let get = |name: &str| -> Result<&NpyArray> {
            arrays.get(name).ok_or_else(|| {
                Error::InvalidInput(format!("{} has no array `{name}`", path.display()))
            })
        };
        let matrix = |name: &str| -> Result<Matrix> {
            let a = get(name)?;
            match a.shape[..] {
                [rows, cols] => Matrix::new(rows, cols, a.to_f32()),
                _ => Err(Error::InvalidInput(format!(
                    "`{name}` must be 2-D, not {:?}",
                    a.shape
                ))),
            }
        };
        let column = |name: &str, rows: usize| -> Result<Vec<i64>> {
            let values = get(name)?.to_i64()?;
            if values.len() != rows {
                return Err(Error::InvalidInput(format!(
                    "{}: `{name}` has {} values for {rows} rows",
                    path.display(),
                    values.len()
                )));
            }
            Ok(values)
        };
        let (queries, gallery) = (matrix("qf")?, matrix("gf")?);
        Ok(Self {
            query_ids: column("q_pids", queries.rows)?,
            gallery_ids: column("g_pids", gallery.rows)?,
            query_cams: column("q_camids", queries.rows)?,
            gallery_cams: column("g_camids", gallery.rows)?,
            queries,
            gallery,
        })
    }

    /// The labels, as the evaluation takes them.
    pub fn labels(&self) -> Labels<'_> {
        Labels {
            query_ids: &self.query_ids,
            gallery_ids: &self.gallery_ids,
            query_cams: &self.query_cams,
            gallery_cams: &self.gallery_cams,
        }
    }
}
