//! The object store every stage that keeps files uses — job logs (`logs.store`), the archive
//! (`archive.store`), uploaded test reports: gzip-compressed objects in a local directory or
//! S3-compatible storage (`object_store`), behind the same `file://` and `s3://` specs.
//!
//! Objects are compressed while they stream in and decompressed while they stream out; none is
//! ever held whole in memory. A write becomes visible only when complete (multipart upload, or
//! a staged file renamed into place), so a reader never sees half an object. What goes where is
//! the user's business (job logs: `hudstream_schemas::job_log::log_path`; the archive: its file
//! names).

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio_util::io::{StreamReader, SyncIoBridge};

/// Compressed bytes gathered before they are handed to the upload.
const PART_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid store {spec:?}: {reason}")]
    Config { spec: String, reason: String },
    #[error("store {op} {path}: {source}")]
    Store {
        op: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("reading the body for {path}: {source}")]
    Body {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the body for {path} is over the {limit}-byte limit")]
    TooLarge { path: String, limit: u64 },
}

impl StoreError {
    /// The object does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }
}

/// What a [`BlobStore::put`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub raw_bytes: u64,
    pub compressed_bytes: u64,
}

/// What a [`BlobStore::put_content_addressed`] stored (or found stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContent {
    pub key: String,
    /// SHA-256 of the raw bytes, hex.
    pub sha256: String,
    pub raw_bytes: u64,
    pub compressed_bytes: u64,
    /// When the object was first stored, epoch milliseconds.
    pub stored_at_ms: i64,
    /// The same bytes were already stored under the key.
    pub already_stored: bool,
}

/// A store of gzip-compressed objects.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    description: String,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl BlobStore {
    /// Opens `spec`: `s3://bucket[/prefix]` (credentials, region and endpoint from `AWS_*`
    /// variables), `file:///abs/dir`, or a directory path (created if missing).
    pub fn open(spec: &str) -> Result<BlobStore, StoreError> {
        let config_error = |reason: String| StoreError::Config {
            spec: spec.to_string(),
            reason,
        };
        if spec.starts_with("s3://") {
            let url = url::Url::parse(spec).map_err(|e| config_error(e.to_string()))?;
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_url(spec)
                .build()
                .map_err(|e| config_error(e.to_string()))?;
            let prefix = url.path().trim_matches('/').to_string();
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            };
            return Ok(BlobStore {
                store,
                description: spec.to_string(),
            });
        }
        let dir = match spec.strip_prefix("file://") {
            Some(path) => std::path::PathBuf::from(path),
            None if spec.contains("://") => {
                return Err(config_error(
                    "only s3://, file:// and plain directory paths are supported".into(),
                ))
            }
            None => std::path::PathBuf::from(spec),
        };
        if spec.is_empty() {
            return Err(config_error("empty".into()));
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| config_error(format!("cannot create {}: {e}", dir.display())))?;
        let local = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| config_error(e.to_string()))?
            .with_automatic_cleanup(true);
        Ok(BlobStore {
            store: Arc::new(local),
            description: format!("file://{}", dir.display()),
        })
    }

    /// The stored object's size and when it was written (epoch ms), if it exists.
    pub async fn stat(&self, path: &str) -> Result<Option<(u64, i64)>, StoreError> {
        match self.store.head(&Path::from(path)).await {
            Ok(meta) => Ok(Some((meta.size, meta.last_modified.timestamp_millis()))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(StoreError::Store {
                op: "head",
                path: path.to_string(),
                source,
            }),
        }
    }

    /// Compresses `body` into `path` as it streams in, at most `limit` raw bytes. The object
    /// appears only once the body has been read to its end.
    pub async fn put<S, E>(&self, path: &str, body: S, limit: u64) -> Result<Written, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        self.put_hashing(path, body, limit, None).await
    }

    /// [`put`](Self::put), answering the SHA-256 of the raw bytes (hex) too.
    pub async fn put_with_sha256<S, E>(
        &self,
        path: &str,
        body: S,
        limit: u64,
    ) -> Result<(Written, String), StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut hasher = Sha256::new();
        let written = self
            .put_hashing(path, body, limit, Some(&mut hasher))
            .await?;
        Ok((written, hex::encode(hasher.finalize())))
    }

    /// Writes a short note (a digest, a marker) as is, uncompressed, replacing any before.
    pub async fn put_note(&self, path: &str, text: &str) -> Result<(), StoreError> {
        self.store
            .put(&Path::from(path), Bytes::from(text.to_string()).into())
            .await
            .map(|_| ())
            .map_err(|source| StoreError::Store {
                op: "put",
                path: path.to_string(),
                source,
            })
    }

    /// The note at `path`, or `None` when there is none.
    pub async fn note(&self, path: &str) -> Result<Option<String>, StoreError> {
        match self.store.get(&Path::from(path)).await {
            Ok(object) => {
                let bytes = object.bytes().await.map_err(|source| StoreError::Store {
                    op: "get",
                    path: path.to_string(),
                    source,
                })?;
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(StoreError::Store {
                op: "get",
                path: path.to_string(),
                source,
            }),
        }
    }

    /// Stores `body` (compressed, at most `limit` raw bytes) under a key made from the SHA-256
    /// of its raw bytes, `key_for(hex)`: staged under `staging/.incoming/` while it streams in
    /// (the hash is known only at the end), then moved into place. Bytes already stored under
    /// their key are not stored again: the answer is the object already there, its time
    /// included — so storing the same bytes twice answers the same.
    pub async fn put_content_addressed<S, E>(
        &self,
        staging: &str,
        body: S,
        limit: u64,
        key_for: impl FnOnce(&str) -> String,
    ) -> Result<StoredContent, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let staged = format!("{staging}/.incoming/{}.gz", uuid::Uuid::new_v4());
        let mut hasher = Sha256::new();
        let written = self
            .put_hashing(&staged, body, limit, Some(&mut hasher))
            .await?;
        let sha256 = hex::encode(hasher.finalize());
        let key = key_for(&sha256);
        let placed = async {
            if let Some(existing) = self.stat(&key).await? {
                return Ok((existing, true));
            }
            self.store
                .rename(&Path::from(staged.as_str()), &Path::from(key.as_str()))
                .await
                .map_err(|source| StoreError::Store {
                    op: "rename",
                    path: key.clone(),
                    source,
                })?;
            let placed = self.stat(&key).await?.ok_or_else(|| StoreError::Store {
                op: "head",
                path: key.clone(),
                source: object_store::Error::NotFound {
                    path: key.clone(),
                    source: "the object just moved into place is missing".into(),
                },
            })?;
            Ok((placed, false))
        }
        .await;
        if !matches!(placed, Ok((_, false))) {
            // Already stored, or failed: the staged copy is not needed.
            if let Err(e) = self.store.delete(&Path::from(staged.as_str())).await {
                tracing::warn!(path = staged, error = %e, "could not delete a staged object");
            }
        }
        let ((compressed_bytes, stored_at_ms), already_stored) = placed?;
        Ok(StoredContent {
            key,
            sha256,
            raw_bytes: written.raw_bytes,
            compressed_bytes,
            stored_at_ms,
            already_stored,
        })
    }

    async fn put_hashing<S, E>(
        &self,
        path: &str,
        body: S,
        limit: u64,
        mut hasher: Option<&mut Sha256>,
    ) -> Result<Written, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let store_error = |op, source| StoreError::Store {
            op,
            path: path.to_string(),
            source,
        };
        let upload = self
            .store
            .put_multipart(&Path::from(path))
            .await
            .map_err(|e| store_error("create", e))?;
        let mut upload = WriteMultipart::new(upload);
        let result = async {
            let mut gzip = GzEncoder::new(Vec::with_capacity(PART_BYTES), Compression::fast());
            let (mut raw, mut compressed) = (0u64, 0u64);
            let mut body = body;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| StoreError::Body {
                    path: path.to_string(),
                    source: std::io::Error::other(e),
                })?;
                raw += chunk.len() as u64;
                if raw > limit {
                    return Err(StoreError::TooLarge {
                        path: path.to_string(),
                        limit,
                    });
                }
                if let Some(hasher) = hasher.as_deref_mut() {
                    hasher.update(&chunk);
                }
                gzip.write_all(&chunk).map_err(|source| StoreError::Body {
                    path: path.to_string(),
                    source,
                })?;
                if gzip.get_ref().len() >= PART_BYTES {
                    let part = std::mem::take(gzip.get_mut());
                    compressed += part.len() as u64;
                    upload
                        .wait_for_capacity(2)
                        .await
                        .map_err(|e| store_error("upload", e))?;
                    upload.write(&part);
                }
            }
            let rest = gzip.finish().map_err(|source| StoreError::Body {
                path: path.to_string(),
                source,
            })?;
            compressed += rest.len() as u64;
            upload.write(&rest);
            Ok(Written {
                raw_bytes: raw,
                compressed_bytes: compressed,
            })
        }
        .await;
        match result {
            Ok(written) => {
                upload
                    .finish()
                    .await
                    .map_err(|e| store_error("complete", e))?;
                Ok(written)
            }
            Err(e) => {
                // The half-written object never becomes visible; tidy its parts.
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(path, error = %abort, "could not abort a failed upload");
                }
                Err(e)
            }
        }
    }

    /// Every object whose path starts with the folder `prefix`, as paths, in no set order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = Path::from(prefix);
        self.store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(|source| StoreError::Store {
                op: "list",
                path: prefix.to_string(),
                source,
            })
    }

    /// Opens `path` for reading. The bytes are pulled from the async store only as the
    /// [`StoredObject`]'s reader is read, on a blocking thread.
    pub async fn read(&self, path: &str) -> Result<StoredObject, StoreError> {
        let object =
            self.store
                .get(&Path::from(path))
                .await
                .map_err(|source| StoreError::Store {
                    op: "get",
                    path: path.to_string(),
                    source,
                })?;
        let bytes = object
            .into_stream()
            .map_err(std::io::Error::other as fn(object_store::Error) -> std::io::Error);
        Ok(StoredObject {
            compressed: SyncIoBridge::new(StreamReader::new(bytes)),
        })
    }
}

type ObjectBytes = futures::stream::MapErr<
    futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
    fn(object_store::Error) -> std::io::Error,
>;

/// A stored object being read.
pub struct StoredObject {
    compressed: SyncIoBridge<StreamReader<ObjectBytes, Bytes>>,
}

impl StoredObject {
    /// The decompressed object. Blocking: call it, and read it, inside `spawn_blocking` (gzip
    /// reads its header at once, and every read waits on the store).
    pub fn into_reader(self) -> impl BufRead + Send {
        BufReader::with_capacity(
            64 << 10,
            MultiGzDecoder::new(BufReader::with_capacity(64 << 10, self.compressed)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn temp_store(name: &str) -> (BlobStore, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("hudstream-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (BlobStore::open(dir.to_str().unwrap()).unwrap(), dir)
    }

    fn body(
        chunks: Vec<&'static [u8]>,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))))
    }

    #[tokio::test]
    async fn a_log_round_trips_compressed() {
        let (store, dir) = temp_store("roundtrip");
        let path = "pytorch/pytorch/42.log.gz".to_string();
        assert_eq!(store.stat(&path).await.unwrap(), None);
        let written = store
            .put(&path, body(vec![b"line one\n", b"line two\n"]), 1 << 20)
            .await
            .unwrap();
        assert_eq!(written.raw_bytes, 18);
        let (size, written_at) = store.stat(&path).await.unwrap().expect("stored");
        assert_eq!(size, written.compressed_bytes);
        assert!((written_at - chrono::Utc::now().timestamp_millis()).abs() < 60_000);
        let on_disk = std::fs::read(dir.join("pytorch/pytorch/42.log.gz")).unwrap();
        assert_eq!(&on_disk[..2], &[0x1f, 0x8b], "gzip magic");
        let text = tokio::task::spawn_blocking({
            let store = store.clone();
            let handle = tokio::runtime::Handle::current();
            move || {
                let mut reader = handle.block_on(store.read(&path)).unwrap().into_reader();
                let mut text = String::new();
                reader.read_to_string(&mut text).unwrap();
                text
            }
        })
        .await
        .unwrap();
        assert_eq!(text, "line one\nline two\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn content_addressed_objects_are_stored_once() {
        let (store, dir) = temp_store("addressed");
        let key_for = |sha: &str| format!("tests/o/r/1/{sha}.xml.gz");
        let first = store
            .put_content_addressed(
                "tests",
                body(vec![b"<testsuite/>", b"\n"]),
                1 << 20,
                key_for,
            )
            .await
            .unwrap();
        assert_eq!(
            first.sha256,
            hex::encode(Sha256::digest(b"<testsuite/>\n")),
            "the hash of the raw bytes"
        );
        assert_eq!(first.key, key_for(&first.sha256));
        assert!(!first.already_stored);
        assert_eq!(first.raw_bytes, 13);
        let again = store
            .put_content_addressed("tests", body(vec![b"<testsuite/>\n"]), 1 << 20, key_for)
            .await
            .unwrap();
        assert!(again.already_stored);
        assert_eq!(
            (
                again.key.as_str(),
                again.stored_at_ms,
                again.compressed_bytes
            ),
            (
                first.key.as_str(),
                first.stored_at_ms,
                first.compressed_bytes
            ),
            "the same bytes answer the same"
        );
        let staged = store.list("tests/.incoming").await.unwrap();
        assert!(staged.is_empty(), "staged copies are gone: {staged:?}");
        let too_large = store
            .put_content_addressed("tests", body(vec![b"0123456789"]), 4, key_for)
            .await;
        assert!(matches!(too_large, Err(StoreError::TooLarge { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_oversized_or_broken_body_leaves_no_object() {
        let (store, dir) = temp_store("limits");
        let path = "o/r/1.log.gz".to_string();
        let err = store
            .put(&path, body(vec![b"0123456789"]), 5)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TooLarge { limit: 5, .. }),
            "{err}"
        );
        let broken = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"part")),
            Err(std::io::Error::other("connection reset")),
        ]);
        let err = store.put(&path, broken, 1 << 20).await.unwrap_err();
        assert!(err.to_string().contains("connection reset"), "{err}");
        assert_eq!(store.stat(&path).await.unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_schemes_are_refused() {
        let err = BlobStore::open("gs://bucket").unwrap_err();
        assert!(err.to_string().contains("only s3://"), "{err}");
    }
}
