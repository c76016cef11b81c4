//! Linux powercap RAPL: discover `intel-rapl:N` package zones (and their `intel-rapl:N:M`
//! subdomains) under a powercap root, read their `energy_uj` counters, and turn two
//! samples into joules with wrap-around handled. AMD CPUs expose the same interface.
//!
//! Every file read goes through a [`SysfsReader`], so tests can feed fake trees and
//! simulate `EACCES` (recent kernels make `energy_uj` readable by root only).

use std::io;
use std::path::{Path, PathBuf};

/// Where the kernel exposes powercap zones.
pub const DEFAULT_ROOT: &str = "/sys/class/powercap";

/// Why RAPL could not be used, with the path at fault.
#[derive(Debug, thiserror::Error)]
pub enum RaplError {
    /// The powercap root does not exist (no powercap driver, not Linux, a VM).
    #[error("no powercap directory at {path}")]
    NoRoot {
        /// The root looked at.
        path: PathBuf,
    },
    /// The root exists but holds no `intel-rapl:N` zone.
    #[error("no RAPL zones (intel-rapl:N) under {path}")]
    NoZones {
        /// The root looked at.
        path: PathBuf,
    },
    /// A counter exists but this user may not read it.
    #[error("permission denied reading {path} (energy_uj is root-only on recent kernels)")]
    PermissionDenied {
        /// The file.
        path: PathBuf,
    },
    /// A file held something other than an unsigned integer (or a name).
    #[error("cannot parse {path}: {text:?}")]
    Unparsable {
        /// The file.
        path: PathBuf,
        /// What it held (trimmed).
        text: String,
    },
    /// Any other I/O failure.
    #[error("reading {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Reads sysfs files and lists directories; the filesystem in production, fakes in tests.
pub trait SysfsReader: Send + Sync {
    /// The file's whole contents.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Names of the directory's entries.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
}

/// The real filesystem.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsReader;

impl SysfsReader for FsReader {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    }
}

/// One RAPL zone (`intel-rapl:0`, or subdomain `intel-rapl:0:1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    /// Directory name (`intel-rapl:0`).
    pub id: String,
    /// Contents of `name` (`package-0`, `core`, `uncore`, `dram`, `psys`).
    pub name: String,
    /// The zone's directory.
    pub dir: PathBuf,
    /// Contents of `max_energy_range_uj`: the counter wraps to 0 after this value.
    pub max_energy_range_uj: u64,
    /// Subdomains (`intel-rapl:N:M` inside this zone), empty for subdomains themselves.
    pub subzones: Vec<Zone>,
}

impl Zone {
    /// The `energy_uj` file.
    pub fn energy_path(&self) -> PathBuf {
        self.dir.join("energy_uj")
    }

    /// True for the zone a package-level total should count: every top-level zone but
    /// `psys` (platform energy, which already contains the packages).
    pub fn is_package(&self) -> bool {
        self.name != "psys"
    }
}

/// Microjoules consumed between two readings of one counter that wraps after `max_uj`:
/// `end - start`, or, when the counter wrapped (`end < start`), `max_uj - start + end`.
/// (The kernel documents the counter as running over `0..=max_energy_range_uj`; one wrap
/// per window is assumed, which holds for windows under about a minute per package.)
pub fn delta_uj(start: u64, end: u64, max_uj: u64) -> u64 {
    if end >= start {
        end - start
    } else {
        max_uj.saturating_sub(start) + end
    }
}

/// `intel-rapl:N` → `Some(N)`; anything else (subdomains, `intel-rapl` itself) → `None`.
fn package_index(name: &str) -> Option<u32> {
    name.strip_prefix("intel-rapl:")?.parse().ok()
}

/// `intel-rapl:N:M` with the given N → `Some(M)`.
fn subzone_index(name: &str, package: u32) -> Option<u32> {
    let rest = name.strip_prefix("intel-rapl:")?;
    let (n, m) = rest.split_once(':')?;
    (n.parse::<u32>().ok()? == package).then_some(())?;
    m.parse().ok()
}

/// RAPL over one powercap root: its zones and the reader to sample them.
pub struct Rapl {
    root: PathBuf,
    reader: Box<dyn SysfsReader>,
    packages: Vec<Zone>,
}

impl std::fmt::Debug for Rapl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rapl")
            .field("root", &self.root)
            .field("packages", &self.packages)
            .finish()
    }
}

/// One reading of every package-level counter, in [`Rapl::packages`] order (µJ).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// `energy_uj` per package zone.
    pub energy_uj: Vec<u64>,
}

impl Rapl {
    /// Discovers the zones under `root` with the real filesystem.
    pub fn discover(root: impl Into<PathBuf>) -> Result<Rapl, RaplError> {
        Rapl::discover_with(root, Box::new(FsReader))
    }

    /// Discovers the zones under `root` through `reader`. Does not read any counter: call
    /// [`Rapl::sample`] to learn whether they are readable.
    pub fn discover_with(
        root: impl Into<PathBuf>,
        reader: Box<dyn SysfsReader>,
    ) -> Result<Rapl, RaplError> {
        let root = root.into();
        let mut entries = reader.list(&root).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => RaplError::NoRoot { path: root.clone() },
            _ => io_error(&root, source),
        })?;
        entries.sort();
        let mut ids: Vec<(u32, String)> = entries
            .iter()
            .filter_map(|e| package_index(e).map(|n| (n, e.clone())))
            .collect();
        ids.sort();
        if ids.is_empty() {
            return Err(RaplError::NoZones { path: root });
        }
        let mut packages = Vec::with_capacity(ids.len());
        for (n, id) in ids {
            let dir = root.join(&id);
            let mut zone = read_zone(&*reader, id, dir.clone())?;
            let mut subs: Vec<(u32, String)> = reader
                .list(&dir)
                .map_err(|e| io_error(&dir, e))?
                .into_iter()
                .filter_map(|e| subzone_index(&e, n).map(|m| (m, e)))
                .collect();
            subs.sort();
            for (_, sub) in subs {
                let sub_dir = dir.join(&sub);
                zone.subzones.push(read_zone(&*reader, sub, sub_dir)?);
            }
            packages.push(zone);
        }
        Ok(Rapl {
            root,
            reader,
            packages,
        })
    }

    /// The root these zones were found under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Package-level zones (`intel-rapl:N`), by N, subdomains inside each.
    pub fn packages(&self) -> &[Zone] {
        &self.packages
    }

    /// Reads every package-level counter now.
    pub fn sample(&self) -> Result<Sample, RaplError> {
        let energy_uj = self
            .packages
            .iter()
            .map(|z| read_u64(&*self.reader, &z.energy_path()))
            .collect::<Result<_, _>>()?;
        Ok(Sample { energy_uj })
    }

    /// Joules consumed between two samples, summed over the package zones
    /// ([`Zone::is_package`]), each counter's wrap-around handled.
    pub fn joules_between(&self, start: &Sample, end: &Sample) -> f64 {
        let uj: u64 = self
            .packages
            .iter()
            .zip(start.energy_uj.iter().zip(&end.energy_uj))
            .filter(|(z, _)| z.is_package())
            .map(|(z, (&a, &b))| delta_uj(a, b, z.max_energy_range_uj))
            .sum();
        uj as f64 * 1e-6
    }

    /// Names of the zones summed, for reports (`package-0+package-1`).
    pub fn domains(&self) -> String {
        self.packages
            .iter()
            .filter(|z| z.is_package())
            .map(|z| z.name.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }
}

fn read_zone(reader: &dyn SysfsReader, id: String, dir: PathBuf) -> Result<Zone, RaplError> {
    let name_path = dir.join("name");
    let name = reader
        .read(&name_path)
        .map_err(|e| io_error(&name_path, e))?
        .trim()
        .to_string();
    let max_energy_range_uj = read_u64(reader, &dir.join("max_energy_range_uj"))?;
    Ok(Zone {
        id,
        name,
        dir,
        max_energy_range_uj,
        subzones: Vec::new(),
    })
}

fn read_u64(reader: &dyn SysfsReader, path: &Path) -> Result<u64, RaplError> {
    let text = reader.read(path).map_err(|e| io_error(path, e))?;
    text.trim().parse().map_err(|_| RaplError::Unparsable {
        path: path.to_path_buf(),
        text: text.trim().to_string(),
    })
}

fn io_error(path: &Path, source: io::Error) -> RaplError {
    match source.kind() {
        io::ErrorKind::PermissionDenied => RaplError::PermissionDenied {
            path: path.to_path_buf(),
        },
        _ => RaplError::Io {
            path: path.to_path_buf(),
            source,
        },
    }
}
