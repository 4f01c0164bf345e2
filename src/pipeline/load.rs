//! Loading a model from a source, asynchronously, one tensor at a time (docs/weights.md).
//!
//! Each component is loaded in two phases:
//! 1. **Stream.** The weights file's header is read and checked against the model (its own
//!    builder runs against the header, [`HeaderCheck`]) before a byte of the body is fetched.
//!    The body is then consumed in offset order: each tensor, once its bytes are in, is
//!    decoded, converted ([`materialize`]), written to the cache, uploaded, and its bytes
//!    dropped. Tensors already in the cache are read from there instead; the missing ones are
//!    fetched with ranged requests, so an interrupted download resumes at the first tensor not
//!    yet loaded (and a dropped connection is retried that way within the same load).
//! 2. **Build.** The network's builder takes its tensors from the [`PreparedWeights`] map.
//!    On any error the map is dropped: there is never a half-built model.
//!
//! The cache entry becomes complete (its manifest written, last) only once every component
//! has been built.

use std::collections::{BTreeMap, BTreeSet};

use burn::tensor::{DType, Device};

use super::progress::{now_seconds, LoadEvent, LoadProgress, LoadReport, Phase, RateMeter};
use super::source::{Body, ModelSource, TEXT_FILES};
use super::{LoadError, Models, SourceInfo};
use crate::model::clip::ClipTextEncoder;
use crate::model::config::{SchedulerConfig, TextEncoderConfig, UNetConfig, VaeConfig};
use crate::model::unet::UNet;
use crate::model::vae::Vae;
use crate::tokenizer::ClipTokenizer;
use crate::weights::cache::{
    Cache, CacheEntry, CacheError, CachedTensor, ComponentRecord, EntryKey, TensorRecord,
};
use crate::weights::materialize::{convert, upload};
use crate::weights::pack::{unpack_tensor, PackManifest, PackTensor, PACK_MANIFEST};
use crate::weights::reader::StreamReader;
use crate::weights::{
    materialize, safetensors, Component, ConversionPolicy, HeaderCheck, PreparedWeights,
    SafetensorsHeader, TensorInfo, WeightError,
};

/// How a load runs.
pub struct LoadOptions<'c> {
    /// How each component's tensors are stored on the device (and in the cache).
    pub policy: ConversionPolicy,
    /// The cache to read and fill, for sources that are downloaded; `None` to load uncached.
    pub cache: Option<&'c Cache>,
    /// How many times a dropped transfer is resumed within one load before giving up.
    pub retries: u32,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        LoadOptions {
            policy: ConversionPolicy::default(),
            cache: None,
            retries: 3,
        }
    }
}

/// Loads every component a run needs onto `device`, telling `progress` as it goes (the last
/// event is [`LoadEvent::Finished`] with the totals).
pub async fn load_models(
    source: &ModelSource,
    device: &Device,
    options: &LoadOptions<'_>,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<Models, LoadError> {
    let mut session = Session::open(source, options, progress, false).await?;
    let texts = session.read_texts(&TEXT_FILES).await?;
    let tokenizer = ClipTokenizer::from_files(
        texts.required("tokenizer/vocab.json"),
        texts.required("tokenizer/merges.txt"),
    )?;
    let configs = texts.configs(source)?;

    let text_encoder = session
        .component(
            Component::TextEncoder,
            device,
            &|s| ClipTextEncoder::load(&configs.text_encoder, s).map(drop),
            |w| ClipTextEncoder::load(&configs.text_encoder, w),
        )
        .await?;
    let vae = session
        .component(
            Component::Vae,
            device,
            &|s| Vae::load(&configs.vae, s).map(drop),
            |w| Vae::load(&configs.vae, w),
        )
        .await?;
    let unet = session
        .component(
            Component::Unet,
            device,
            &|s| UNet::load(&configs.unet, s).map(drop),
            |w| UNet::load(&configs.unet, w),
        )
        .await?;
    let unet_weights = session.policy.unet;
    session.finish(texts).await;
    Ok(Models {
        tokenizer,
        text_encoder,
        unet,
        vae,
        scheduler: configs.scheduler,
        device: device.clone(),
        source: SourceInfo {
            unet_weights: Some(unet_weights),
            ..source.info()
        },
    })
}

/// Loads only what prompt encoding needs, the tokenizer and the text encoder (the app's
/// encoder check). Tensors go into the cache as usual; the entry is completed by a full load.
pub async fn load_text_encoder(
    source: &ModelSource,
    device: &Device,
    options: &LoadOptions<'_>,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<(ClipTokenizer, ClipTextEncoder), LoadError> {
    let mut session = Session::open(source, options, progress, false).await?;
    let texts = session.read_texts(&TEXT_FILES[..3]).await?;
    let tokenizer = ClipTokenizer::from_files(
        texts.required("tokenizer/vocab.json"),
        texts.required("tokenizer/merges.txt"),
    )?;
    let configs = texts.configs(source)?;
    let encoder = session
        .component(
            Component::TextEncoder,
            device,
            &|s| ClipTextEncoder::load(&configs.text_encoder, s).map(drop),
            |w| ClipTextEncoder::load(&configs.text_encoder, w),
        )
        .await?;
    session.finish(texts).await;
    Ok((tokenizer, encoder))
}

/// What `sow pull` reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PullReport {
    /// Bytes that came over the network.
    pub transferred: u64,
    /// Bytes that were already in the cache.
    pub already_cached: u64,
    /// Bytes written to the cache now.
    pub written: u64,
    /// Bytes the complete cache entry holds.
    pub entry_bytes: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Fetches a model into the cache without building it (what a user runs before going
/// offline): every tensor is checked against the model, converted under `policy` and stored.
/// `probe` is any device for the header checks (a few bytes are allocated on it).
pub async fn pull(
    source: &ModelSource,
    cache: &Cache,
    policy: ConversionPolicy,
    probe: &Device,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<PullReport, LoadError> {
    if !source.is_remote() {
        return Err(LoadError::Unsupported(format!(
            "{} is read where it is: there is nothing to pull",
            source.label()
        )));
    }
    pull_into(source, cache, policy, probe, progress, false).await
}

/// [`pull`], and for `cache_local` local sources too (the pack writer converts through a
/// cache entry).
pub(crate) async fn pull_into(
    source: &ModelSource,
    cache: &Cache,
    policy: ConversionPolicy,
    probe: &Device,
    progress: &mut dyn FnMut(LoadEvent),
    cache_local: bool,
) -> Result<PullReport, LoadError> {
    let options = LoadOptions {
        policy,
        cache: Some(cache),
        ..LoadOptions::default()
    };
    let mut session = Session::open(source, &options, progress, cache_local).await?;
    let texts = session.read_texts(&TEXT_FILES).await?;
    let configs = texts.configs(source)?;
    let checks: [(Component, &Check); 3] = [
        (Component::TextEncoder, &|s| {
            ClipTextEncoder::load(&configs.text_encoder, s).map(drop)
        }),
        (Component::Vae, &|s| Vae::load(&configs.vae, s).map(drop)),
        (Component::Unet, &|s| UNet::load(&configs.unet, s).map(drop)),
    ];
    for (component, check) in checks {
        session.stream(component, None, probe, check).await?;
        if session.cache.is_none() {
            break;
        }
    }
    if session.cache.is_none() {
        return Err(LoadError::Cache(session.cache_failure.clone().unwrap_or(
            CacheError::Unavailable {
                location: cache.location(),
                detail: "it could not be written".to_string(),
            },
        )));
    }
    let report = session.finish(texts).await;
    let entry = cache.entry(&key(source, &options)).await;
    Ok(PullReport {
        transferred: report.transferred,
        already_cached: report.from_cache,
        written: report.cached,
        entry_bytes: entry.manifest().map_or(0, |m| m.bytes()),
        seconds: report.seconds,
    })
}

/// A model's builder run against a header ([`HeaderCheck`]): it checks the file against the
/// model and records the tensors the model takes.
type Check<'a> = dyn Fn(&mut HeaderCheck) -> Result<(), WeightError> + 'a;

/// The cache entry of a load. A pack's schemes are its own, read from its manifest (which the
/// entry keeps), so its entry is keyed by the pack alone.
pub(crate) fn key(source: &ModelSource, options: &LoadOptions<'_>) -> EntryKey {
    EntryKey {
        source: source.label(),
        revision: source.revision(),
        policy: match source.is_pack() {
            true => "pack".to_string(),
            false => options.policy.cache_key(),
        },
    }
}

/// The text files of a load, by path (`None`: the source does not have it).
struct Texts(BTreeMap<String, Option<String>>);

/// The parsed configs, SD-2.1-base's values where a source has none.
struct Configs {
    text_encoder: TextEncoderConfig,
    vae: VaeConfig,
    unet: UNetConfig,
    scheduler: SchedulerConfig,
}

impl Texts {
    fn required(&self, path: &str) -> &str {
        self.0
            .get(path)
            .and_then(|t| t.as_deref())
            .expect("required files were checked when read")
    }

    fn configs(&self, source: &ModelSource) -> Result<Configs, LoadError> {
        fn parse<T>(
            texts: &Texts,
            source: &ModelSource,
            path: &str,
            from_json: fn(&str, &str) -> Result<T, crate::model::config::ConfigError>,
            default: fn() -> T,
        ) -> Result<T, LoadError> {
            match texts.0.get(path).and_then(|t| t.as_deref()) {
                Some(json) => Ok(from_json(&source.file_label(path), json)?),
                None => Ok(default()),
            }
        }
        Ok(Configs {
            text_encoder: parse(
                self,
                source,
                "text_encoder/config.json",
                TextEncoderConfig::from_json,
                TextEncoderConfig::sd21,
            )?,
            vae: parse(
                self,
                source,
                "vae/config.json",
                VaeConfig::from_json,
                VaeConfig::sd21,
            )?,
            unet: parse(
                self,
                source,
                "unet/config.json",
                UNetConfig::from_json,
                UNetConfig::sd21,
            )?,
            scheduler: parse(
                self,
                source,
                "scheduler/scheduler_config.json",
                SchedulerConfig::from_json,
                SchedulerConfig::sd21,
            )?,
        })
    }
}

/// One load: the source, the cache entry (while it works), the events and the totals.
struct Session<'a, 'c> {
    source: &'a ModelSource,
    options: &'a LoadOptions<'c>,
    events: &'a mut dyn FnMut(LoadEvent),
    /// The cache entry, or `None` when the load runs uncached (no cache, a local source, or
    /// a cache error earlier in this load).
    cache: Option<CacheEntry<'c>>,
    cache_failure: Option<CacheError>,
    /// Every component's cache records, for the manifest; a component missing here (or a
    /// cache turned off mid-load) means the entry is not committed.
    records: BTreeMap<Component, ComponentRecord>,
    report: LoadReport,
    started: f64,
    /// The schemes the tensors are converted to: the options', or a pack's own.
    policy: ConversionPolicy,
    /// A pack's manifest, and its text for the cache entry.
    pack: Option<(PackManifest, String)>,
}

/// One tensor a component's stream reads.
#[derive(Clone)]
struct Planned {
    /// Its position in the source's weights file (the cache's index).
    index: usize,
    name: String,
    /// Its shape in the source's file: what the model checked, and what the upload lays out.
    shape: Vec<usize>,
    /// Where and how it is stored in the file being read (the source's, or a pack's).
    at: TensorInfo,
    /// Its record in the pack's manifest, when the file is a pack's.
    packed: Option<PackTensor>,
}

/// The state of one component's stream.
struct Stream {
    component: Component,
    /// The weights file, relative to the model's root, and its label in messages.
    file: String,
    label: String,
    /// The tensors the model takes, in the order of the file being read.
    plan: Vec<Planned>,
    done: BTreeSet<usize>,
    done_bytes: u64,
    records: Vec<TensorRecord>,
    prepared: Option<PreparedWeights>,
    reader: Option<StreamReader<Body>>,
    ticker: Ticker,
    range_notice_given: bool,
}

/// Turns bytes done into progress events, at most four times a second (and at the end).
struct Ticker {
    component: Component,
    total: u64,
    meter: RateMeter,
    last_event: f64,
}

impl Ticker {
    fn tick(&mut self, events: &mut dyn FnMut(LoadEvent), done: u64, measure_rate: bool) {
        let now = now_seconds();
        if measure_rate {
            self.meter.record(now, done);
        }
        if now - self.last_event < 0.25 && done < self.total {
            return;
        }
        self.last_event = now;
        let rate = if measure_rate {
            self.meter.rate()
        } else {
            None
        };
        emit(
            events,
            self.component,
            Phase::Reading,
            done,
            self.total,
            rate,
        );
    }
}

fn emit(
    events: &mut dyn FnMut(LoadEvent),
    component: Component,
    phase: Phase,
    done: u64,
    total: u64,
    rate: Option<f64>,
) {
    let eta = rate
        .filter(|&r| r > 0.0)
        .map(|r| total.saturating_sub(done) as f64 / r);
    events(LoadEvent::Progress(LoadProgress {
        component,
        phase,
        done,
        total,
        rate,
        eta,
    }));
}

impl<'a, 'c> Session<'a, 'c> {
    /// Starts a load: opens its cache entry (for downloaded sources, or any with
    /// `cache_local`) and reads a pack's manifest.
    async fn open(
        source: &'a ModelSource,
        options: &'a LoadOptions<'c>,
        events: &'a mut dyn FnMut(LoadEvent),
        cache_local: bool,
    ) -> Result<Session<'a, 'c>, LoadError> {
        let cache = match options.cache {
            Some(cache) if cache_local || source.is_remote() => {
                Some(cache.entry(&key(source, options)).await)
            }
            _ => None,
        };
        let mut session = Session {
            source,
            options,
            events,
            cache,
            cache_failure: None,
            records: BTreeMap::new(),
            report: LoadReport::default(),
            started: now_seconds(),
            policy: options.policy,
            pack: None,
        };
        if source.is_pack() {
            session.open_pack().await?;
        }
        Ok(session)
    }

    /// Reads and checks a pack's manifest; its schemes replace the options'.
    async fn open_pack(&mut self) -> Result<(), LoadError> {
        let texts = self.read_texts(&[(PACK_MANIFEST, true)]).await?;
        let json = texts.required(PACK_MANIFEST).to_string();
        let manifest = PackManifest::parse(&json).map_err(|detail| LoadError::BadPack {
            pack: self.source.label(),
            detail,
        })?;
        let schemes = manifest.conversion();
        if schemes != self.options.policy {
            self.notice(format!(
                "{} keeps the text encoder in {}, the VAE in {} and the UNet in {}, as it was \
                 made; other schemes need another pack",
                self.source.label(),
                schemes.text_encoder,
                schemes.vae,
                schemes.unet
            ));
        }
        self.policy = schemes;
        self.pack = Some((manifest, json));
        Ok(())
    }

    fn notice(&mut self, text: String) {
        (self.events)(LoadEvent::Notice(text));
    }

    /// Stops using the cache for the rest of this load after `error`. A full cache is also
    /// emptied of this entry, so that the space is not held by a download that cannot finish.
    async fn cache_failed(&mut self, error: CacheError) {
        if let Some(mut entry) = self.cache.take() {
            if matches!(error, CacheError::Quota { .. }) {
                entry.discard().await;
            }
        }
        self.notice(format!("{error}; loading without the cache"));
        self.cache_failure = Some(error);
    }

    /// Text files, from the cache when its entry is complete, else from the source.
    async fn read_texts(&mut self, files: &[(&str, bool)]) -> Result<Texts, LoadError> {
        let mut texts = BTreeMap::new();
        for &(path, required) in files {
            let cached = match &self.cache {
                Some(entry) => entry.text(path).await,
                None => None,
            };
            let text = match cached {
                Some(text) => text,
                None => {
                    let text = self.source.text(path).await?;
                    if self.source.is_remote() {
                        self.report.transferred += text.as_ref().map_or(0, |t| t.len() as u64);
                    }
                    text
                }
            };
            if required && text.is_none() {
                let root = match self.source.is_pack() {
                    true => "a pack, the folder `sow pack` writes (with pack.json)",
                    false => {
                        "a diffusers-layout model (with text_encoder/, tokenizer/, unet/ and vae/)"
                    }
                };
                return Err(LoadError::Missing {
                    source_label: self.source.label(),
                    what: path.to_string(),
                    detail: format!(
                        "{} was not found; the source must be the root of {root}",
                        self.source.file_label(path)
                    ),
                });
            }
            self.check_pack_file(path, text.as_deref())?;
            texts.insert(path.to_string(), text);
        }
        Ok(Texts(texts))
    }

    /// A pack's text file must be the one its manifest lists.
    fn check_pack_file(&self, path: &str, text: Option<&str>) -> Result<(), LoadError> {
        let Some((manifest, _)) = &self.pack else {
            return Ok(());
        };
        let Some(Some(record)) = manifest.files.get(path) else {
            return Ok(());
        };
        let matches = text.is_some_and(|t| {
            t.len() as u64 == record.bytes && crc32fast::hash(t.as_bytes()) == record.crc32
        });
        match matches {
            true => Ok(()),
            false => Err(LoadError::BadPack {
                pack: self.source.label(),
                detail: format!(
                    "{path} is missing or does not match its checksum in {PACK_MANIFEST}"
                ),
            }),
        }
    }

    /// Streams a component and builds it with `build`.
    async fn component<M>(
        &mut self,
        component: Component,
        device: &Device,
        check: &Check<'_>,
        build: impl FnOnce(&mut PreparedWeights) -> Result<M, WeightError>,
    ) -> Result<M, LoadError> {
        let mut prepared = self
            .stream(component, Some(device), device, check)
            .await?
            .expect("a stream to a device prepares weights");
        let (done, total) = (
            prepared.device_bytes() as u64,
            prepared.device_bytes() as u64,
        );
        self.report
            .device_bytes
            .insert(component, prepared.device_bytes() as u64);
        self.progress(component, Phase::Building, done, total);
        match build(&mut prepared) {
            Ok(model) => {
                self.progress(component, Phase::Done, done, total);
                Ok(model)
            }
            Err(e) => {
                // The header check passed, so this is a mistake of ours; trust nothing of it.
                if let Some(entry) = &mut self.cache {
                    entry.discard_component(component).await;
                }
                self.records.remove(&component);
                Err(e.into())
            }
        }
    }

    fn progress(&mut self, component: Component, phase: Phase, done: u64, total: u64) {
        emit(self.events, component, phase, done, total, None);
    }

    /// Streams one component's tensors: onto `device` (for a load), or into the cache only
    /// (`device` `None`, for a pull). Returns the prepared weights of a load.
    async fn stream(
        &mut self,
        component: Component,
        device: Option<&Device>,
        probe: &Device,
        check: &Check<'_>,
    ) -> Result<Option<PreparedWeights>, LoadError> {
        let result = self.stream_inner(component, device, probe, check).await;
        if let Err(e) = &result {
            if damages_the_file(e) {
                // A bad file leaves nothing in the cache.
                if let Some(entry) = &mut self.cache {
                    entry.discard_component(component).await;
                }
            }
        }
        result
    }

    async fn stream_inner(
        &mut self,
        component: Component,
        device: Option<&Device>,
        probe: &Device,
        check: &Check<'_>,
    ) -> Result<Option<PreparedWeights>, LoadError> {
        let mut stream = self.open_stream(component, device, probe, check).await?;
        self.read_cached(&mut stream).await;
        let mut attempts = 0;
        loop {
            let result = self.fetch_missing(&mut stream).await;
            self.retire_reader(&mut stream);
            match result {
                Ok(()) => break,
                Err(e) if is_transient(&e) && attempts < self.options.retries => {
                    attempts += 1;
                    let resume_at = stream
                        .plan
                        .iter()
                        .find(|t| !stream.done.contains(&t.index))
                        .map_or(0, |t| t.at.start);
                    self.notice(format!(
                        "{e}; resuming at byte {resume_at} (attempt {} of {})",
                        attempts + 1,
                        self.options.retries + 1
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        if self.cache.is_some() {
            self.records.insert(
                component,
                ComponentRecord {
                    file: stream.file.clone(),
                    tensors: std::mem::take(&mut stream.records),
                },
            );
        }
        Ok(stream.prepared)
    }

    /// Reads and checks the header (from the cache if a load got that far before, else from
    /// the source), and plans the tensors to read.
    async fn open_stream(
        &mut self,
        component: Component,
        device: Option<&Device>,
        probe: &Device,
        check: &Check<'_>,
    ) -> Result<Stream, LoadError> {
        let cached = match &self.cache {
            Some(entry) => entry.header(component).await,
            None => None,
        };
        let fresh = cached.is_none();
        let packed = self
            .pack
            .as_ref()
            .and_then(|(m, _)| m.components.get(&component).cloned());
        let (file, prefix, reader) = match cached {
            Some((file, prefix)) => (file, prefix, None),
            None => {
                let file = packed.as_ref().map(|p| p.file.as_str());
                let (file, body) = self.source.open_weights(component, file, 0).await?;
                let label = self.source.file_label(&file);
                let mut reader = StreamReader::new(&label, body, 0);
                let mut count = |_| {};
                let length = reader.read_to(8, "the header length", &mut count).await?;
                let header_len = SafetensorsHeader::header_len(&label, &length)?;
                if let Some(file_len) = reader.stream().file_len() {
                    if file_len < header_len {
                        return Err(WeightError::Truncated {
                            file: label,
                            detail: format!(
                                "the header needs {header_len} bytes but the file has {file_len}"
                            ),
                        }
                        .into());
                    }
                }
                let rest = reader.read_to(header_len, "the header", &mut count).await?;
                let prefix = [length, rest].concat();
                (file, prefix, Some(reader))
            }
        };
        let label = self.source.file_label(&file);
        let file_len = reader.as_ref().and_then(|r| r.stream().file_len());
        let header = SafetensorsHeader::parse(&label, &prefix, file_len)?;
        // A pack is checked against the source's header it carries: the real names and shapes.
        let source_header = match &packed {
            Some(p) => SafetensorsHeader::parse(
                &format!("{label} (its source's header in {PACK_MANIFEST})"),
                &p.source_prefix(),
                None,
            )?,
            None => header.clone(),
        };
        let requested = {
            let mut probe_source = HeaderCheck::new(&source_header, probe);
            check(&mut probe_source)?;
            probe_source.into_requested()
        };
        if fresh {
            if let Some(entry) = &mut self.cache {
                if let Err(e) = entry.save_header(component, &file, &prefix).await {
                    self.cache_failed(e).await;
                }
            }
        }
        let mut in_file_order: Vec<(&String, &TensorInfo)> = source_header.tensors.iter().collect();
        in_file_order.sort_by_key(|(_, info)| info.start);
        let mut plan = Vec::new();
        for (index, (name, info)) in in_file_order.into_iter().enumerate() {
            if !requested.contains(name) {
                continue;
            }
            let (at, record) = match &packed {
                None => (info.clone(), None),
                Some(p) => {
                    let missing = |what: &str| WeightError::Pack {
                        file: label.clone(),
                        name: name.clone(),
                        detail: format!("is missing from {what}: the pack is incomplete"),
                    };
                    let at = header
                        .tensors
                        .get(name)
                        .ok_or_else(|| missing("the file"))?;
                    let record = p.tensors.iter().find(|t| &t.name == name);
                    let record = record.ok_or_else(|| missing(PACK_MANIFEST))?;
                    (at.clone(), Some(record.clone()))
                }
            };
            plan.push(Planned {
                index,
                name: name.clone(),
                shape: info.shape.clone(),
                at,
                packed: record,
            });
        }
        plan.sort_by_key(|t| t.at.start);
        let total: u64 = plan.iter().map(|t| t.at.end - t.at.start).sum();
        Ok(Stream {
            component,
            file,
            label: label.clone(),
            plan,
            done: BTreeSet::new(),
            done_bytes: 0,
            records: Vec::new(),
            prepared: device.map(|d| PreparedWeights::new(&label, d)),
            reader,
            ticker: Ticker {
                component,
                total,
                meter: RateMeter::default(),
                last_event: f64::NEG_INFINITY,
            },
            range_notice_given: false,
        })
    }

    /// Takes every tensor the cache has (checked), in file order.
    async fn read_cached(&mut self, stream: &mut Stream) {
        if self.cache.is_none() {
            return;
        }
        let policy = self.policy.policy(stream.component);
        for planned in stream.plan.clone() {
            let Planned {
                index, name, shape, ..
            } = &planned;
            let Some(entry) = &mut self.cache else { return };
            match entry.tensor(stream.component, *index, name).await {
                CachedTensor::Hit(data, record) => {
                    if let Some(prepared) = &mut stream.prepared {
                        let device = prepared_device(prepared).clone();
                        match upload(name, shape, data, &policy, &device) {
                            Ok(weight) => prepared.insert(name, shape, weight),
                            Err(e) => {
                                self.notice(format!(
                                    "the cached {} tensor {name:?} cannot be used ({e}); fetching it again",
                                    stream.component
                                ));
                                continue;
                            }
                        }
                    }
                    self.report.from_cache += record.bytes;
                    stream.records.push(record);
                    stream.done.insert(*index);
                    stream.done_bytes += planned.at.end - planned.at.start;
                    stream.ticker.tick(self.events, stream.done_bytes, false);
                }
                CachedTensor::Missing => {}
                CachedTensor::Corrupt(why) => self.notice(format!(
                    "the cached {} tensor {name:?} was damaged ({why}); fetching it again",
                    stream.component
                )),
            }
        }
    }

    /// Fetches every tensor not yet loaded, in file order, reusing the open body where the
    /// next tensor follows and opening a ranged request where it does not.
    async fn fetch_missing(&mut self, stream: &mut Stream) -> Result<(), LoadError> {
        let policy = self.policy.policy(stream.component);
        for planned in stream.plan.clone() {
            let Planned {
                index,
                name,
                shape,
                at: info,
                packed,
            } = planned;
            if stream.done.contains(&index) {
                continue;
            }
            let reusable = stream.reader.as_ref().is_some_and(|r| {
                r.position() <= info.start
                    && (info.start - r.position() <= MAX_SKIP || r.stream().range_ignored())
            });
            if !reusable {
                self.retire_reader(stream);
                let (_, body) = self
                    .source
                    .open_weights(stream.component, Some(&stream.file), info.start)
                    .await?;
                if body.range_ignored() && !stream.range_notice_given {
                    stream.range_notice_given = true;
                    self.notice(format!(
                        "{}: the server ignores Range requests, so the file is read again from its \
                         start and the bytes before {} are skipped",
                        stream.label, info.start
                    ));
                }
                stream.reader = Some(StreamReader::new(&stream.label, body, info.start));
            }
            let what = format!("tensor {name:?}");
            let (base, len) = (stream.done_bytes, info.end - info.start);
            let reader = stream.reader.as_mut().expect("a reader was opened above");
            let events = &mut *self.events;
            let ticker = &mut stream.ticker;
            let mut arrived = 0u64;
            let mut on_bytes = |n: u64| {
                arrived += n;
                ticker.tick(events, base + arrived.min(len), true);
            };
            reader.skip_to(info.start, &what, &mut |_| {}).await?;
            let bytes = reader.read_to(info.end, &what, &mut on_bytes).await?;
            let data = match &packed {
                Some(record) => {
                    unpack_tensor(record, &info, &shape, &policy, bytes).map_err(|detail| {
                        WeightError::Pack {
                            file: stream.label.clone(),
                            name: name.clone(),
                            detail,
                        }
                    })?
                }
                None => safetensors::decode(&info, bytes).ok_or_else(|| {
                    WeightError::UnsupportedDtype {
                        file: stream.label.clone(),
                        name: name.clone(),
                        dtype: info.dtype.name().to_string(),
                    }
                })?,
            };
            let conversion = |e: materialize::ConversionError| WeightError::Conversion {
                file: stream.label.clone(),
                name: name.clone(),
                detail: e.to_string(),
            };
            // A pack's quantized tensors arrive converted.
            let converted = match data.dtype() {
                DType::QFloat(_) => data,
                _ => convert(&name, data, &policy).map_err(conversion)?,
            };
            if let Some(entry) = &mut self.cache {
                match entry
                    .save_tensor(stream.component, index, &name, &converted)
                    .await
                {
                    Ok(record) => {
                        self.report.cached += record.bytes;
                        stream.records.push(record);
                    }
                    Err(e) => self.cache_failed(e).await,
                }
            }
            if let Some(prepared) = &mut stream.prepared {
                let device = prepared_device(prepared).clone();
                let weight =
                    upload(&name, &shape, converted, &policy, &device).map_err(conversion)?;
                prepared.insert(&name, &shape, weight);
            }
            stream.done.insert(index);
            stream.done_bytes += len;
            stream.ticker.tick(self.events, stream.done_bytes, true);
        }
        Ok(())
    }

    /// Counts what a finished body transferred.
    fn retire_reader(&mut self, stream: &mut Stream) {
        if let Some(reader) = stream.reader.take() {
            self.report.transferred += reader.stream().transferred();
        }
    }

    /// Ends the load: commits the cache entry if every component went into it, and reports.
    async fn finish(mut self, texts: Texts) -> LoadReport {
        let complete = Component::ALL.iter().all(|c| self.records.contains_key(c));
        let mut texts = texts.0;
        if let Some((_, json)) = &self.pack {
            texts.insert(PACK_MANIFEST.to_string(), Some(json.clone()));
        }
        if let Some(entry) = &mut self.cache {
            if complete && (!entry.is_complete() || self.report.cached > 0) {
                let records = std::mem::take(&mut self.records);
                if let Err(e) = entry.commit(&texts, records).await {
                    self.cache_failed(e).await;
                }
            }
        }
        self.report.seconds = now_seconds() - self.started;
        (self.events)(LoadEvent::Finished(self.report.clone()));
        self.report
    }
}

/// How far apart two wanted tensors may be for one body to be read through the gap rather
/// than a new ranged request opened.
const MAX_SKIP: u64 = 4 << 20;

fn prepared_device(prepared: &PreparedWeights) -> &Device {
    use crate::weights::WeightSource;
    prepared.device()
}

/// Failures worth resuming: the connection, not the file.
fn is_transient(error: &LoadError) -> bool {
    use crate::net::stream::FetchError;
    match error {
        LoadError::Weights(WeightError::Io { .. }) => true,
        LoadError::Fetch(FetchError::Network { .. }) => true,
        LoadError::Fetch(FetchError::Status { status, .. }) => *status >= 500,
        _ => false,
    }
}

/// Failures that say the file itself is bad (so nothing of it may stay cached).
fn damages_the_file(error: &LoadError) -> bool {
    matches!(error, LoadError::Weights(e) if !matches!(e, WeightError::Io { .. }))
}
