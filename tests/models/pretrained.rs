//! The pretrained models' registry (`reid::zoo`): the catalog against the addresses torchreid,
//! torchvision and timm publish (`tests/fixtures/zoo/published.json`, read from their sources by
//! `make_zoo_fixtures.py`), downloads from a loopback server (an interrupted transfer resumed, a
//! wrong file refused and not kept), the offline instructions, and files placed by hand.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;

use reid::models::Arch;
use reid::zoo::{self, Expected, Progress, Zoo, ZooTask};

use crate::common::{
    self,
    file_server::{FileServer, Served},
};

fn published() -> serde_json::Value {
    let text = std::fs::read_to_string(common::fixture("zoo/published.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A torchreid checkpoint of osnet_x0_25 (the fixture every weight test reads).
fn osnet_file() -> Vec<u8> {
    std::fs::read(common::fixture("osnet_x0_25/checkpoint.pth.tar")).unwrap()
}

/// An address where nothing listens: the loopback port of a listener already dropped.
fn unreachable() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

#[test]
fn the_catalog_holds_the_addresses_the_projects_publish() {
    let published = published();
    let catalog = zoo::catalog();
    let names: BTreeSet<&str> = catalog.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names.len(), catalog.len(), "names are unique");
    for model in catalog {
        model.architecture().unwrap();
        for other in &model.backbone_of {
            other.parse::<Arch>().unwrap();
        }
        assert_eq!(zoo::find(&model.name).unwrap(), model);
        assert!(model.input[0] > 0 && model.input[1] > 0, "{}", model.name);
        assert!(!model.file.contains('/'), "{}", model.file);
        if let Some(hash) = &model.sha256 {
            assert_eq!(hash.len(), 64, "{}", model.name);
        }
        if model.task == ZooTask::Reid {
            assert!(!model.accuracy.is_empty(), "{} has no accuracy", model.name);
        }
    }
    // Every ImageNet address torchreid's, torchvision's, Cadene's and timm's sources name.
    let imagenet = published["imagenet"].as_object().unwrap();
    assert!(imagenet.len() >= 10, "{}", imagenet.len());
    for (arch, url) in imagenet {
        let arch: Arch = arch.parse().unwrap();
        let entry = zoo::imagenet(arch).unwrap_or_else(|| panic!("no ImageNet entry for {arch}"));
        assert_eq!(entry.url, url.as_str().unwrap(), "{arch}");
    }
    // torch.hub's convention: the hex after the last `-` of a file name starts its SHA-256.
    for model in catalog {
        if let Some(prefix) = &model.sha256_prefix {
            let stem = model.url.rsplit('/').next().unwrap();
            let hex = stem.rsplit('-').next().unwrap().split('.').next().unwrap();
            assert_eq!(prefix, hex, "{}", model.name);
        }
    }
    // torchreid's model zoo page: every re-id model's address and accuracy.
    for want in published["reid"].as_array().unwrap() {
        let url = want["url"].as_str().unwrap();
        let entry = catalog
            .iter()
            .find(|m| m.url == url)
            .unwrap_or_else(|| panic!("no entry for {url}"));
        assert_eq!(entry.arch, want["arch"].as_str().unwrap(), "{url}");
        let got = &entry.accuracy[0];
        assert_eq!(got.rank1, want["rank1"].as_f64().map(|v| v as f32), "{url}");
        assert_eq!(got.map, want["map"].as_f64().map(|v| v as f32), "{url}");
    }
}

#[test]
fn an_interrupted_download_resumes_and_is_checked_before_it_takes_its_name() {
    let entry = zoo::find("osnet_x0_25_imagenet").unwrap();
    assert_eq!(entry.expected(), Expected::Loadable);
    let body = osnet_file();
    let half = body.len() / 2;
    let server = FileServer::start(vec![(
        entry.file.as_str(),
        Served {
            body: body.clone(),
            cut_first_at: Some(half),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let zoo = Zoo::in_dir(dir.path()).with_mirror(&server.base);
    let (path, part) = (
        dir.path().join(&entry.file),
        dir.path().join(format!("{}.part", entry.file)),
    );
    let mut last = None;
    let err = zoo.fetch(entry, &mut |p| last = Some(p)).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, reid::Error::Download(_)), "{message}");
    assert!(message.contains("resume"), "{message}");
    assert!(!path.exists());
    assert_eq!(std::fs::metadata(&part).unwrap().len() as usize, half);

    let got = zoo.fetch(entry, &mut |p| last = Some(p)).unwrap();
    assert_eq!(got, path);
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert!(!part.exists());
    let total = body.len() as u64;
    assert_eq!(
        last,
        Some(Progress {
            done: total,
            total: Some(total)
        })
    );
    let ranges: Vec<Option<String>> = server.seen().into_iter().map(|s| s.range).collect();
    assert_eq!(ranges, [None, Some(format!("bytes={half}-"))]);
    // Cached: checked, not downloaded again.
    assert_eq!(zoo.fetch(entry, &mut |_| {}).unwrap(), path);
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn a_file_that_is_not_the_published_one_is_refused_and_not_kept() {
    let body = osnet_file();
    // ResNet-50's published name carries the start of its SHA-256; the served file is another.
    let resnet = zoo::imagenet(Arch::Resnet50).unwrap();
    assert!(matches!(resnet.expected(), Expected::Sha256Prefix(_)));
    // A full SHA-256 as a project would publish it: Python's hashlib's of the fixture.
    let sha256 = published()["fixture_sha256"].as_str().unwrap().to_string();
    let mut good = zoo::find("osnet_x0_25_imagenet").unwrap().clone();
    good.file = "hashed.pth".into();
    good.sha256 = Some(sha256.clone());
    let mut bad = good.clone();
    bad.file = "misprinted.pth".into();
    let flipped = if sha256.starts_with('0') { "1" } else { "0" };
    bad.sha256 = Some(format!("{flipped}{}", &sha256[1..]));
    // An architecture's ImageNet entry served another architecture's weights.
    let wrong_arch = zoo::imagenet(Arch::OsnetX0_5).unwrap();
    assert_eq!(wrong_arch.expected(), Expected::Loadable);
    let served = |file: &str| {
        (
            file.to_string(),
            Served {
                body: body.clone(),
                cut_first_at: None,
            },
        )
    };
    let files = [
        served(&resnet.file),
        served(&good.file),
        served(&bad.file),
        served(&wrong_arch.file),
    ];
    let server = FileServer::start(files.iter().map(|(f, s)| (f.as_str(), s.clone())).collect());
    let dir = tempfile::tempdir().unwrap();
    let zoo = Zoo::in_dir(dir.path()).with_mirror(&server.base);
    let empty = |dir: &Path| std::fs::read_dir(dir).unwrap().count() == 0;
    for (entry, says) in [
        (resnet, "SHA-256"),
        (&bad, "SHA-256"),
        (wrong_arch, "osnet_x0_5"),
    ] {
        let err = zoo.fetch(entry, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains(says) && err.contains(&entry.name), "{err}");
        assert!(empty(dir.path()), "{} left a file", entry.name);
    }
    let path = zoo.fetch(&good, &mut |_| {}).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
}

#[test]
fn offline_the_error_says_where_to_put_the_file_and_a_placed_file_is_checked_and_used() {
    let entry = zoo::find("osnet_x0_25_imagenet").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zoo = Zoo::in_dir(dir.path()).with_mirror(unreachable());
    let err = zoo.fetch(entry, &mut |_| {}).unwrap_err().to_string();
    for part in [
        entry.file.as_str(),
        &dir.path().display().to_string(),
        "put it",
    ] {
        assert!(err.contains(part), "`{part}` not in: {err}");
    }
    assert_eq!(zoo.local(entry).unwrap(), None);
    // A damaged file placed there is refused (not replaced, not used).
    let placed = dir.path().join(&entry.file);
    let body = osnet_file();
    std::fs::write(&placed, &body[..body.len() / 3]).unwrap();
    let err = zoo.fetch(entry, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("delete"), "{err}");
    // The right file placed there is used without the network.
    std::fs::write(&placed, &body).unwrap();
    assert_eq!(zoo.fetch(entry, &mut |_| {}).unwrap(), placed);
}
