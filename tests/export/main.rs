//! ONNX export (layer `export`): every architecture in ONNX Runtime and OpenVINO.

#[path = "../common/mod.rs"]
mod common;

mod onnx_parity;
