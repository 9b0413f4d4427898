//! File formats read and written by several layers: NumPy arrays, Python pickles (data only)
//! and MATLAB 5 files. Readers here bound every allocation by what the file holds.

pub mod mat;
pub mod npy;
pub mod pickle;
