//! The archive in an S3-compatible bucket (`[retention.s3]`), against a real moto server: the
//! store keeps the `ArchiveStore` contract, the commands archive to, export from and forget in
//! the bucket, and a bucket that is missing or a service that is down fails the run with an
//! error naming them while Redis keeps everything. (tests/archive.rs runs the whole archive
//! scenario, crashes included, on a bucket too.)

use std::time::Duration;

use switchboard::archive::{Archive, ArchiveStore};
use switchboard::config::Config;
use switchboard::model::now_ms;
use switchboard::store::Store;

use crate::archive::{seed, segment_texts};
use crate::erasure::redis_contents;
use crate::harness::{config_dir, RedisServer, TempDir, TestRedis};
use crate::mailservers::free_port;
use crate::moto::{self, MotoServer, KEY_ID, SECRET};

const DAY_MS: u64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_keeps_the_archive_store_contract() {
    let moto = MotoServer::start();
    let bucket = moto.bucket().await;
    let store = moto.store(&bucket, "switchboard/archive");
    assert_eq!(store.list("segments/").await.unwrap(), Vec::<String>::new());
    store.put("segments/b.gz", b"two".to_vec()).await.unwrap();
    store.put("segments/a.gz", b"one".to_vec()).await.unwrap();
    store.put("segments/a.gz", b"three".to_vec()).await.unwrap();
    store
        .put("manifests/a.gz.json", b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.list("segments/").await.unwrap(),
        vec!["segments/a.gz", "segments/b.gz"],
        "full names, sorted, one folder"
    );
    assert_eq!(
        store.get("segments/a.gz").await.unwrap().as_deref(),
        Some(&b"three"[..]),
        "a put replaces"
    );
    assert_eq!(store.get("segments/none.gz").await.unwrap(), None);
    store.delete("segments/a.gz").await.unwrap();
    store.delete("segments/a.gz").await.unwrap();
    assert_eq!(store.get("segments/a.gz").await.unwrap(), None);
    assert_eq!(
        store.list("segments/").await.unwrap(),
        vec!["segments/b.gz"]
    );
    let error = store.put("../escape", Vec::new()).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);

    // The prefix is the archive's whole world: a store on another folder sees none of it.
    let elsewhere = moto.store(&bucket, "other");
    assert_eq!(
        elsewhere.list("segments/").await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(elsewhere.get("segments/b.gz").await.unwrap(), None);

    // More objects than one listing page (S3 pages by 1000) all come back, in order.
    let names: Vec<String> = (0..1003).map(|n| format!("many/{n:05}.gz")).collect();
    for chunk in names.chunks(50) {
        let puts = chunk
            .iter()
            .map(|name| store.put(name, name.as_bytes().to_vec()));
        for result in futures_util::future::join_all(puts).await {
            result.unwrap();
        }
    }
    assert_eq!(store.list("many/").await.unwrap(), names);
}

/// Runs the `switchboard` binary; returns success, stdout and stderr.
fn switchboard(args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .output()
        .expect("run switchboard");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A config file for `redis` whose archive is the `[retention.s3]` section given.
fn write_config(dir: &TempDir, redis: &RedisServer, s3_section: &str) -> std::path::PathBuf {
    let path = dir.0.join("switchboard.toml");
    std::fs::write(
        &path,
        format!(
            "[redis]\nurl = \"{}\"\n[triage]\nknowledge_dir = \"{}\"\n\
             [retention]\narchive_after_days = 30\n{s3_section}",
            redis.url(),
            config_dir().join("knowledge").display()
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_archive_to_export_from_and_forget_in_a_bucket() {
    let moto = MotoServer::start();
    let bucket = moto.bucket().await;
    let redis = RedisServer::start();
    let dir = TempDir::new("archive-s3-cli");
    let path = write_config(&dir, &redis, &moto.section(&bucket, "acme/support"));
    let config_path = path.to_str().unwrap();
    let store = Store::connect(&redis.url(), Duration::from_secs(2))
        .await
        .unwrap();
    store.ensure_groups().await.unwrap();
    seed(&store, "s:cli-alice", true).await;
    seed(&store, "s:cli-bob", true).await;

    // The archive the commands build from this file, run 31 days on.
    let config = Config::load(&path).expect("the config loads");
    let archive = switchboard::admin::archive_of(&config)
        .expect("the store is set up")
        .expect("an archive");
    let report = archive
        .run(&store, now_ms() + 31 * DAY_MS, 30)
        .await
        .unwrap();
    assert_eq!(report.archived, 2, "{report:?}");
    let objects = moto.store(&bucket, "acme/support");
    assert_eq!(
        objects.list("manifests/").await.unwrap().len() as u64,
        report.segments,
        "each segment committed in the bucket"
    );

    let (ok, stdout, stderr) = switchboard(&["archive", "status", "-c", config_path]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("\"conversations\": 2"), "{stdout}");
    let (ok, stdout, stderr) = switchboard(&["archive", "run", "-c", config_path]);
    assert!(ok && stdout.contains("\"archived\": 0"), "{stdout}{stderr}");

    let out = dir.0.join("export.json");
    let (ok, _, stderr) = switchboard(&[
        "contact",
        "export",
        "webchat:s:cli-alice",
        "--out",
        out.to_str().unwrap(),
        "-c",
        config_path,
    ]);
    assert!(ok, "{stderr}");
    let export = std::fs::read_to_string(&out).unwrap();
    assert!(
        export.contains("s:cli-alice says: my invoice is wrong"),
        "{export}"
    );

    let (ok, stdout, stderr) = switchboard(&[
        "contact",
        "forget",
        "webchat:s:cli-alice",
        "--by",
        "dpo",
        "-c",
        config_path,
    ]);
    assert!(ok, "{stderr}");
    let forgotten: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(forgotten["archived_conversations"], 1, "{stdout}");
    let raw = segment_texts(&objects).await;
    assert!(!raw.contains("s:cli-alice"), "erased from the bucket");
    assert!(raw.contains("s:cli-bob says"), "the other customer stays");
    assert_eq!(archive.read_all().await.unwrap().len(), 1);
}

/// What a failed run said, after checking it names the bucket and the endpoint and no secret.
async fn failed_run(archive: &Archive, store: &Store, bucket: &str, endpoint: &str) -> String {
    let error = archive
        .run(store, now_ms() + 31 * DAY_MS, 30)
        .await
        .expect_err("the run fails")
        .to_string();
    assert!(
        error.contains(&format!("S3 bucket \"{bucket}\" at {endpoint}")),
        "{error}"
    );
    assert!(
        !error.contains(SECRET) && !error.contains(KEY_ID),
        "{error}"
    );
    println!("the run failed: {error}");
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_or_a_service_down_fails_the_run_by_name_and_redis_keeps_everything() {
    let moto = MotoServer::start();
    let redis = RedisServer::start();
    let store = Store::connect(&redis.url(), Duration::from_secs(2))
        .await
        .unwrap();
    store.ensure_groups().await.unwrap();
    for n in 0..3 {
        seed(&store, &format!("s:kept-{n}"), true).await;
    }
    let redis = TestRedis::Single(redis);
    let before = redis_contents(&redis);

    let missing = "sb-no-such-bucket";
    let archive = Archive::new(std::sync::Arc::new(moto.store(missing, "")));
    let error = failed_run(&archive, &store, missing, &moto.endpoint()).await;
    assert!(error.contains("HTTP 404 NoSuchBucket: "), "{error}");
    assert_eq!(redis_contents(&redis), before, "Redis is untouched");

    let down = format!("http://127.0.0.1:{}", free_port());
    let bucket = moto.bucket().await;
    let archive = Archive::new(std::sync::Arc::new(moto::store_of(&moto::section(
        &down, &bucket, "",
    ))));
    let error = failed_run(&archive, &store, &bucket, &down).await;
    assert!(error.contains("unreachable"), "{error}");
    assert_eq!(redis_contents(&redis), before, "Redis is untouched");

    // The command says the same and exits non-zero.
    let dir = TempDir::new("archive-s3-missing");
    let TestRedis::Single(server) = &redis else {
        unreachable!()
    };
    let path = write_config(&dir, server, &moto.section(missing, ""));
    let (ok, _, stderr) = switchboard(&["archive", "run", "-c", path.to_str().unwrap()]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(&format!("S3 bucket \"{missing}\" at {}", moto.endpoint()))
            && stderr.contains("NoSuchBucket"),
        "{stderr}"
    );
    assert_eq!(redis_contents(&redis), before, "Redis is untouched");
}
