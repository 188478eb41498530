//! `WATCHTOWER_*` environment variables, applied over the file before validation, so that a
//! container can point the same file at another Redis or give each replica its own name.

use super::file::FileConfig;

/// The variables that override the file, and the key each one replaces.
pub const OVERRIDES: [(&str, &str); 6] = [
    ("WATCHTOWER_REDIS_URL", "[redis] url"),
    ("WATCHTOWER_NAMESPACE", "[redis] namespace"),
    ("WATCHTOWER_CONSUMER_NAME", "[consumer] name"),
    ("WATCHTOWER_ADMIN_LISTEN", "[admin] listen"),
    ("WATCHTOWER_ADMIN_TOKEN", "[admin] token"),
    ("WATCHTOWER_WORKER_THREADS", "[runtime] worker_threads"),
];

/// Replaces values of `raw` by the variables that `lookup` finds (empty values are ignored).
pub fn apply_env_overrides(raw: &mut FileConfig, lookup: impl Fn(&str) -> Option<String>) {
    let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
    if let Some(url) = get("WATCHTOWER_REDIS_URL") {
        raw.redis.url = Some(url);
    }
    if let Some(ns) = get("WATCHTOWER_NAMESPACE") {
        raw.redis.namespace = Some(ns);
    }
    if let Some(name) = get("WATCHTOWER_CONSUMER_NAME") {
        raw.consumer.name = Some(name);
    }
    if let Some(listen) = get("WATCHTOWER_ADMIN_LISTEN") {
        raw.admin.listen = Some(listen);
    }
    if let Some(threads) = get("WATCHTOWER_WORKER_THREADS") {
        // A value that is not a number becomes 0, which validation refuses by its key.
        raw.runtime.worker_threads = Some(threads.trim().parse().unwrap_or(0));
    }
    if let Some(token) = get("WATCHTOWER_ADMIN_TOKEN") {
        // Replaces the file's token wherever the file keeps it.
        raw.admin.token = Some(token);
        raw.admin.token_env = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_replace_file_values_and_empty_ones_do_not() {
        let mut raw: FileConfig = toml::from_str("[redis]\nurl = \"redis://a:1\"\n").unwrap();
        apply_env_overrides(&mut raw, |name| match name {
            "WATCHTOWER_REDIS_URL" => Some("redis://b:2".into()),
            "WATCHTOWER_NAMESPACE" => Some(String::new()),
            _ => None,
        });
        assert_eq!(raw.redis.url.as_deref(), Some("redis://b:2"));
        assert_eq!(raw.redis.namespace, None);
    }

    #[test]
    fn an_admin_token_variable_replaces_the_token_env_of_the_file() {
        let mut raw: FileConfig = toml::from_str("[admin]\ntoken_env = \"OTHER\"\n").unwrap();
        apply_env_overrides(&mut raw, |name| {
            (name == "WATCHTOWER_ADMIN_TOKEN").then(|| "t0ken".to_owned())
        });
        assert_eq!(raw.admin.token.as_deref(), Some("t0ken"));
        assert_eq!(raw.admin.token_env, None);
    }

    #[test]
    fn a_worker_threads_variable_sets_the_runtime_and_junk_is_zero() {
        let mut raw = FileConfig::default();
        apply_env_overrides(&mut raw, |name| {
            (name == "WATCHTOWER_WORKER_THREADS").then(|| " 4 ".to_owned())
        });
        assert_eq!(raw.runtime.worker_threads, Some(4));
        apply_env_overrides(&mut raw, |name| {
            (name == "WATCHTOWER_WORKER_THREADS").then(|| "many".to_owned())
        });
        assert_eq!(raw.runtime.worker_threads, Some(0), "refused by validation");
    }
}
