//! The `[orders]` and `[notices]` sections: where order lookups go and who hears about
//! notices nobody saw. Settings that only make sense for another source are errors.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, OrderSourceConfig, OrdersConfig, invalid};
use crate::orders::http::{HttpOrdersConfig, UrlTemplate, header_pair, parse_header_line};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileOrders {
    pub(super) source: Option<FileOrderSource>,
    pub(super) url: Option<String>,
    pub(super) auth_header: Option<String>,
    pub(super) auth_header_name: Option<String>,
    pub(super) auth_header_value: Option<String>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) retries: Option<u32>,
    pub(super) seed_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum FileOrderSource {
    Embedded,
    Http,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileNotices {
    pub(super) webhook_url: Option<String>,
    pub(super) webhook_auth_header: Option<String>,
    pub(super) daily_updates: Option<bool>,
    pub(super) daily_update_hour_utc: Option<u32>,
}
/// Checks the `[orders]` section; settings of the HTTP source are errors under the embedded
/// one, so a forgotten `source = "http"` does not silently serve the wrong orders.
pub(super) fn resolve_orders(file: FileOrders, auth_override: Option<&str>) -> Result<OrdersConfig, ConfigError> {
    let seed_file = match file.seed_file {
        Some(path) if path.as_os_str().is_empty() => None,
        Some(path) => Some(path),
        None => OrdersConfig::default().seed_file,
    };
    let source = file.source.unwrap_or(FileOrderSource::Embedded);
    if source == FileOrderSource::Embedded {
        let http_only = [
            ("orders.url", file.url.is_some()),
            ("orders.auth_header", file.auth_header.is_some()),
            ("orders.auth_header_name", file.auth_header_name.is_some()),
            ("orders.auth_header_value", file.auth_header_value.is_some()),
            ("orders.timeout_ms", file.timeout_ms.is_some()),
            ("orders.retries", file.retries.is_some()),
        ];
        if let Some((key, _)) = http_only.into_iter().find(|(_, set)| *set) {
            return Err(invalid(key, "is only used with source = \"http\"; set it or remove this key"));
        }
        return Ok(OrdersConfig { source: OrderSourceConfig::Embedded, seed_file });
    }
    let url = file.url.ok_or_else(|| {
        invalid("orders.url", "is required with source = \"http\", e.g. \"https://shop.example/api/orders/{id}\"")
    })?;
    let url = UrlTemplate::parse(&url).map_err(|reason| ConfigError::Invalid { key: "orders.url", reason })?;
    let mut http = HttpOrdersConfig::new(url);
    let header = match (auth_override, file.auth_header, file.auth_header_name, file.auth_header_value) {
        (Some(line), ..) => Some(
            parse_header_line(line)
                .map_err(|reason| ConfigError::Invalid { key: "SUPPORTBOT_ORDERS_AUTH_HEADER", reason })?,
        ),
        (None, Some(_), Some(_), _) | (None, Some(_), _, Some(_)) => {
            return Err(invalid(
                "orders.auth_header",
                "give either auth_header = \"Name: value\" or auth_header_name and auth_header_value, not both",
            ));
        }
        (None, Some(line), None, None) => Some(
            parse_header_line(&line).map_err(|reason| ConfigError::Invalid { key: "orders.auth_header", reason })?,
        ),
        (None, None, Some(name), Some(value)) => Some(
            header_pair(&name, &value)
                .map_err(|reason| ConfigError::Invalid { key: "orders.auth_header_name", reason })?,
        ),
        (None, None, Some(_), None) => return Err(invalid("orders.auth_header_value", "is missing (the name is set)")),
        (None, None, None, Some(_)) => return Err(invalid("orders.auth_header_name", "is missing (the value is set)")),
        (None, None, None, None) => None,
    };
    http.auth_header = header;
    if let Some(ms) = file.timeout_ms {
        if !(1..=60_000).contains(&ms) {
            return Err(invalid("orders.timeout_ms", "must be between 1 and 60000 (milliseconds per attempt)"));
        }
        http.timeout = std::time::Duration::from_millis(ms);
    }
    if let Some(retries) = file.retries {
        if retries > 10 {
            return Err(invalid("orders.retries", "must be at most 10"));
        }
        http.retries = retries;
    }
    Ok(OrdersConfig { source: OrderSourceConfig::Http(http), seed_file })
}

pub(super) fn resolve_webhook(file: FileNotices) -> Result<Option<crate::notices::WebhookConfig>, ConfigError> {
    let Some(url) = file.webhook_url.filter(|u| !u.trim().is_empty()) else {
        if file.webhook_auth_header.is_some() {
            return Err(invalid("notices.webhook_auth_header", "is set but notices.webhook_url is not"));
        }
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid("notices.webhook_url", "must be an http:// or https:// URL"));
    }
    let auth_header = match file.webhook_auth_header {
        Some(line) => {
            let (name, value) = crate::orders::http::parse_header_line(&line)
                .map_err(|reason| ConfigError::Invalid { key: "notices.webhook_auth_header", reason })?;
            Some((name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
        }
        None => None,
    };
    Ok(Some(crate::notices::WebhookConfig { url, auth_header }))
}

#[cfg(test)]
mod tests {
    use super::super::FileConfig;
    use super::*;

    fn orders_from(toml_text: &str) -> Result<OrdersConfig, ConfigError> {
        let file: FileConfig =
            toml::from_str(toml_text).map_err(|source| ConfigError::Parse { path: "t".into(), source })?;
        resolve_orders(file.orders, None)
    }

    fn invalid_key(toml_text: &str) -> String {
        match orders_from(toml_text) {
            Err(ConfigError::Invalid { key, reason }) => format!("{key}: {reason}"),
            other => panic!("expected an invalid setting, got {other:?}"),
        }
    }

    #[test]
    fn orders_default_to_the_embedded_table_with_the_samples() {
        assert_eq!(orders_from("").expect("valid"), OrdersConfig::default());
        let none = orders_from("[orders]\nseed_file = \"\"\n").expect("valid");
        assert_eq!((none.source, none.seed_file), (OrderSourceConfig::Embedded, None));
    }

    #[test]
    fn the_http_order_source_is_checked() {
        let ok = orders_from(
            "[orders]\nsource = \"http\"\nurl = \"https://shop.example/api/orders/{id}\"\n\
             auth_header = \"Authorization: Bearer xyz\"\ntimeout_ms = 1500\nretries = 0\n",
        )
        .expect("valid");
        let OrderSourceConfig::Http(http) = ok.source else { panic!("http expected") };
        assert_eq!((http.timeout.as_millis(), http.retries), (1500, 0));
        assert_eq!(http.auth_header.as_ref().map(|(n, _)| n.as_str()), Some("authorization"));

        let base = "[orders]\nsource = \"http\"\n";
        assert!(invalid_key(base).starts_with("orders.url: is required"));
        assert!(invalid_key(&format!("{base}url = \"https://shop.example/api/orders\"\n")).contains("{id}"));
        let url = "url = \"https://shop.example/o/{id}\"\n";
        assert!(invalid_key(&format!("{base}{url}timeout_ms = 0\n")).starts_with("orders.timeout_ms"));
        assert!(invalid_key(&format!("{base}{url}retries = 11\n")).starts_with("orders.retries"));
        assert!(invalid_key(&format!("{base}{url}auth_header = \"Bearer xyz\"\n")).starts_with("orders.auth_header"));
        assert!(
            invalid_key(&format!("{base}{url}auth_header_name = \"X-Key\"\n")).starts_with("orders.auth_header_value")
        );
        let pair = orders_from(&format!("{base}{url}auth_header_name = \"X-Key\"\nauth_header_value = \"k1\"\n"));
        assert!(matches!(pair.map(|c| c.source), Ok(OrderSourceConfig::Http(h)) if h.auth_header.is_some()));
        assert!(
            invalid_key(&format!("[orders]\n{url}")).contains("only used with source = \"http\""),
            "a url without source = http is a mistake, not ignored"
        );
        let typo = toml::from_str::<FileConfig>("[orders]\nsorce = \"http\"\n").expect_err("unknown key");
        assert!(typo.to_string().contains("sorce"), "{typo}");
        let bad_source = toml::from_str::<FileConfig>("[orders]\nsource = \"ftp\"\n").expect_err("unknown source");
        assert!(bad_source.to_string().contains("embedded"), "{bad_source}");
    }
}
