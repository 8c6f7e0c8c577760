//! Whether the dynamic loader could find a library, answered without asking it: a `dlopen` of a
//! library that is not there searches a dozen folders and costs 30 µs or more, and `info` asks
//! for eight libraries that most machines without a GPU lack (a quarter of `info`'s time).
//!
//! The answer errs on the side of "maybe" and then the loader itself is asked: with
//! `LD_LIBRARY_PATH` set, or without a readable `/etc/ld.so.cache`, every library may be found.
//! Otherwise a library may be found when the cache names it or when it lies in one of the
//! loader's default folders (a library copied there without `ldconfig`). hwbench has no RUNPATH
//! of its own, so nothing else is searched.

use std::sync::OnceLock;

/// The loader's default folders on this architecture, on multiarch (Debian, Ubuntu) and lib64
/// (Fedora, RHEL) systems.
#[cfg(target_arch = "x86_64")]
const DEFAULT_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];
#[cfg(target_arch = "aarch64")]
const DEFAULT_DIRS: &[&str] = &[
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const DEFAULT_DIRS: &[&str] = &["/lib64", "/usr/lib64", "/lib", "/usr/lib"];

/// Whether `dlopen(name)` may succeed; false only when it surely fails.
pub fn may_find(name: &str) -> bool {
    let search_path_set = std::env::var_os("LD_LIBRARY_PATH").is_some_and(|p| !p.is_empty());
    if search_path_set {
        return true;
    }
    let Some(cache) = cache() else {
        return true;
    };
    cache_names(cache, name) || default_dirs().iter().any(|dir| dir.join(name).exists())
}

/// The default folders that exist, each once: on a merged-/usr system /lib is /usr/lib.
fn default_dirs() -> &'static [std::path::PathBuf] {
    static DIRS: OnceLock<Vec<std::path::PathBuf>> = OnceLock::new();
    DIRS.get_or_init(|| super::distinct_dirs(DEFAULT_DIRS))
}

fn cache() -> Option<&'static [u8]> {
    static CACHE: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    CACHE
        .get_or_init(|| std::fs::read("/etc/ld.so.cache").ok())
        .as_deref()
}

/// Whether the cache's string table holds `name` as a key ("\0libm.so.6\0") or as the file name of
/// a path ("/lib/x86_64-linux-gnu/libm.so.6\0").
fn cache_names(cache: &[u8], name: &str) -> bool {
    [b'\0', b'/'].iter().any(|&before| {
        let mut needle = Vec::with_capacity(name.len() + 2);
        needle.push(before);
        needle.extend_from_slice(name.as_bytes());
        needle.push(b'\0');
        memchr::memmem::find(cache, &needle).is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::cache_names;

    #[test]
    fn a_cache_names_a_library_only_whole() {
        let cache = b"glibc-ld.so.cache1.1\0\0libcuda.so.1\0/usr/lib/x86_64-linux-gnu/libm.so.6\0";
        assert!(cache_names(cache, "libm.so.6"));
        assert!(cache_names(cache, "libcuda.so.1"));
        assert!(
            !cache_names(cache, "libm.so"),
            "a prefix is not the library"
        );
        assert!(!cache_names(cache, "m.so.6"), "nor is a suffix");
        assert!(!cache_names(cache, "libcudart.so.12"));
    }

    #[test]
    fn the_c_library_is_always_found() {
        // Every glibc system's loader finds libc.so.6, through the cache or a default folder.
        if !cfg!(target_env = "gnu") {
            return;
        }
        assert!(super::may_find("libc.so.6"));
        assert!(
            !super::may_find("libhwbench-no-such-library.so.7")
                || std::env::var_os("LD_LIBRARY_PATH").is_some()
        );
    }
}
