//! ONNX export (layers `export`, `quantize`): every architecture in ONNX Runtime and
//! OpenVINO; what the graph's input holds; INT8 exports checked by retrieval accuracy.

#[path = "../common/mod.rs"]
mod common;

mod onnx_parity;
mod quantize;
