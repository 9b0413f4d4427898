//! `reid zoo`: the catalog listed with what the cache holds, `reid zoo fetch` downloading into
//! the cache from a loopback mirror, an unknown name refused before anything is downloaded.

use std::process::Command;

use crate::common::{
    self,
    file_server::{FileServer, Served},
};

#[test]
fn zoo_lists_the_catalog_and_fetches_into_the_cache() {
    let entry = reid::zoo::find("osnet_x0_25_imagenet").unwrap();
    let body = std::fs::read(common::fixture("osnet_x0_25/checkpoint.pth.tar")).unwrap();
    let server = FileServer::start(vec![(
        entry.file.as_str(),
        Served {
            body: body.clone(),
            cut_first_at: None,
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().display().to_string();
    let reid = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_reid"))
            .args(args)
            .env("REID_ZOO_DIR", &cache)
            .env("REID_ZOO_MIRROR", &server.base)
            // PyTorch's download folders are searched too: none here.
            .env("TORCH_HOME", dir.path().join("torch"))
            .output()
            .unwrap()
    };

    let out = reid(&["zoo", "fetch", "osnet_x9_imagenet", "osnet_x0_25_imagenet"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no pretrained model `osnet_x9_imagenet`"),
        "{stderr}"
    );
    assert!(
        server.seen().is_empty(),
        "nothing is downloaded when a name is wrong"
    );

    let out = reid(&["zoo", "fetch", "osnet_x0_25_imagenet"]);
    common::assert_success(&out);
    let path = dir.path().join(&entry.file);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("osnet_x0_25_imagenet {}", path.display())
    );
    assert_eq!(std::fs::read(&path).unwrap(), body);

    for args in [
        &["zoo"][..],
        &["zoo", "list"],
        &["zoo", "list", "--dir", &cache],
    ] {
        let out = reid(args);
        common::assert_success(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("cache: {cache}")), "{stdout}");
        for model in reid::zoo::catalog() {
            let line = stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some(model.name.as_str()))
                .unwrap_or_else(|| panic!("{} not listed:\n{stdout}", model.name));
            let cached = if model.name == entry.name {
                "yes"
            } else {
                "no"
            };
            assert!(
                line.split_whitespace().any(|w| w == cached),
                "{line} should say {cached}"
            );
        }
    }
}
