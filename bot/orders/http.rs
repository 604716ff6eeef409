//! The shop's own order API as the source: `GET <url with {id}>`, JSON in the [`Order`]
//! shape. Slow or failing calls are retried with exponential back-off and jitter, then
//! reported as [`OrderSourceError::Unavailable`] so the bot can say so honestly instead of
//! keeping a visitor waiting.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng as _;
use reqwest::StatusCode;
use reqwest::header::{HeaderName, HeaderValue};

use super::{INPUT_FIELDS, Order, OrderInput, OrderSource, OrderSourceError};

/// Largest response body read from the shop's API.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Everything but unreserved characters (RFC 3986) is encoded, so an order number can never
/// add a path segment, a query or a fragment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A URL with `{id}` placeholders, checked once at start so a lookup cannot build a bad URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate(String);

impl UrlTemplate {
    /// Checks that the template is an absolute `http(s)` URL containing `{id}`.
    ///
    /// # Errors
    /// What is wrong, for the person writing the config.
    pub fn parse(template: &str) -> Result<Self, String> {
        let template = template.trim();
        if !template.contains("{id}") {
            return Err(format!("{template:?} has no {{id}} placeholder for the order number"));
        }
        let sample = template.replace("{id}", "FH-100234");
        let url = reqwest::Url::parse(&sample).map_err(|e| format!("{template:?} is not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("{template:?} must be an http:// or https:// URL with a host"));
        }
        Ok(Self(template.to_owned()))
    }

    /// The URL for one order, the number percent-encoded (`A/B 1` → `A%2FB%201`).
    #[must_use]
    pub fn url_for(&self, order_id: &str) -> String {
        self.0.replace("{id}", &utf8_percent_encode(order_id, PATH_SEGMENT).to_string())
    }

    /// The template as configured.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How to reach the shop's API.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpOrdersConfig {
    /// Where one order is fetched.
    pub url: UrlTemplate,
    /// A header to send with every call (usually `Authorization`); its value is marked
    /// sensitive so it never appears in logs or `Debug` output.
    pub auth_header: Option<(HeaderName, HeaderValue)>,
    /// Limit for one attempt, connecting and reading the body included.
    pub timeout: Duration,
    /// Further attempts after a failed one (5xx, 408, 429, timeout, connection error).
    pub retries: u32,
    /// First back-off; doubles per retry, with up to 50% random jitter taken off.
    pub backoff_base: Duration,
}

impl HttpOrdersConfig {
    /// Defaults for a URL: no auth header, 3 s per attempt, 2 retries, 200 ms back-off.
    #[must_use]
    pub fn new(url: UrlTemplate) -> Self {
        Self {
            url,
            auth_header: None,
            timeout: Duration::from_secs(3),
            retries: 2,
            backoff_base: Duration::from_millis(200),
        }
    }

    /// The longest a lookup can take before it gives up: every attempt timing out plus the
    /// longest back-off before each retry.
    #[must_use]
    pub fn worst_case(&self) -> Duration {
        let backoff: Duration = (0..self.retries).map(|n| self.backoff_ceiling(n)).sum();
        self.timeout * (self.retries + 1) + backoff
    }

    fn backoff_ceiling(&self, retry: u32) -> Duration {
        self.backoff_base.saturating_mul(2u32.saturating_pow(retry.min(16)))
    }
}

impl fmt::Debug for HttpOrdersConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOrdersConfig")
            .field("url", &self.url.as_str())
            .field("auth_header", &self.auth_header.as_ref().map(|(name, _)| format!("{name}: <redacted>")))
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff_base", &self.backoff_base)
            .finish()
    }
}

/// Parses `Name: value` (as in `auth_header = "Authorization: Bearer xyz"`).
///
/// # Errors
/// When there is no colon, or the name or value is not a valid header.
pub fn parse_header_line(line: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) =
        line.split_once(':').ok_or_else(|| "expected \"Name: value\", e.g. \"Authorization: Bearer …\"".to_owned())?;
    header_pair(name, value)
}

/// Checks a header name and value; the value is marked sensitive.
///
/// # Errors
/// When either is not valid in an HTTP header.
pub fn header_pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("{:?} is not a valid header name", name.trim()))?;
    let mut value = HeaderValue::from_str(value.trim())
        .map_err(|_| "the header value contains characters not allowed in HTTP headers".to_owned())?;
    if value.is_empty() {
        return Err("the header value is empty".into());
    }
    value.set_sensitive(true);
    Ok((name, value))
}

/// The shop's API as an [`OrderSource`].
#[derive(Debug, Clone)]
pub struct HttpOrders {
    client: reqwest::Client,
    config: HttpOrdersConfig,
}

/// Why one attempt failed: for good, or worth another try.
enum AttemptError {
    Final(OrderSourceError),
    Transient(String),
}

impl HttpOrders {
    /// A client for the configured API. Redirects are not followed: the auth header must not
    /// travel to another host, and a moved API should be configured with its new URL.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS setup).
    pub fn new(config: HttpOrdersConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout)
            .user_agent(concat!("supportbot/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, config })
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &HttpOrdersConfig {
        &self.config
    }

    async fn attempt(&self, url: &str, order_id: &str) -> Result<Option<Order>, AttemptError> {
        let mut request = self.client.get(url).header(reqwest::header::ACCEPT, "application/json");
        if let Some((name, value)) = &self.config.auth_header {
            request = request.header(name.clone(), value.clone());
        }
        let exchange = async {
            let mut response = request.send().await?;
            let status = response.status();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Ok((status, None));
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, Some(body)))
        };
        let (status, body) = match tokio::time::timeout(self.config.timeout, exchange).await {
            Err(_) => {
                return Err(AttemptError::Transient(format!(
                    "no answer within {} ms",
                    self.config.timeout.as_millis()
                )));
            }
            Ok(Err(e)) => return Err(AttemptError::Transient(describe(e))),
            Ok(Ok(answer)) => answer,
        };
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS => {
                return Err(AttemptError::Transient(format!("HTTP {s}")));
            }
            s => {
                return Err(AttemptError::Final(OrderSourceError::Invalid(format!(
                    "the shop's API answered HTTP {s}"
                ))));
            }
        }
        let Some(body) = body else {
            return Err(AttemptError::Final(OrderSourceError::Invalid(format!(
                "the answer is larger than {MAX_BODY_BYTES} bytes"
            ))));
        };
        order_from_json(&body, order_id).map(Some).map_err(AttemptError::Final)
    }
}

/// Maps the shop API's JSON to an [`Order`]: the fields of our own API (unknown ones are
/// ignored, the shop's API may say more), checked the same way.
///
/// # Errors
/// [`OrderSourceError::Invalid`] naming the field at fault.
pub fn order_from_json(body: &[u8], order_id: &str) -> Result<Order, OrderSourceError> {
    let invalid = |m: String| OrderSourceError::Invalid(m);
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("the answer is not JSON: {e}")))?;
    let serde_json::Value::Object(mut fields) = value else {
        return Err(invalid("the answer is not a JSON object".into()));
    };
    fields.retain(|key, _| INPUT_FIELDS.contains(&key.as_str()));
    let input: OrderInput = serde_path_to_error::deserialize(serde_json::Value::Object(fields))
        .map_err(|e| invalid(format!("{}: {}", e.path(), e.inner())))?;
    // The shop's own spelling of the number wins, if it is the one we asked for.
    let id = match input.id.as_deref().map(str::trim) {
        Some(given) if given.eq_ignore_ascii_case(order_id.trim()) => given.to_owned(),
        Some(given) => return Err(invalid(format!("asked for order {order_id:?}, got {given:?}"))),
        None => order_id.trim().to_owned(),
    };
    let input = OrderInput { id: None, ..input };
    input.into_order(&id, Utc::now()).map_err(|fields| {
        invalid(fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))
    })
}

/// A failed exchange in words, without the URL (a query string may carry a key).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_connect() {
        "cannot connect".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        // The chain says what failed (reset, TLS, bad chunk) without the URL's secrets.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

#[async_trait]
impl OrderSource for HttpOrders {
    async fn get(&self, order_id: &str) -> Result<Option<Order>, OrderSourceError> {
        let order_id = order_id.trim();
        // No number, no order (and no request for the collection URL); nor for a paste of
        // a whole message.
        if order_id.is_empty() || order_id.len() > 256 {
            return Ok(None);
        }
        let url = self.config.url.url_for(order_id);
        let mut retry = 0;
        loop {
            match self.attempt(&url, order_id).await {
                Ok(order) => return Ok(order),
                Err(AttemptError::Final(e)) => return Err(e),
                Err(AttemptError::Transient(why)) if retry >= self.config.retries => {
                    let attempts = retry + 1;
                    return Err(OrderSourceError::Unavailable(format!(
                        "the shop's API failed {attempts} time(s), last: {why}"
                    )));
                }
                Err(AttemptError::Transient(why)) => {
                    let ceiling = self.config.backoff_ceiling(retry);
                    // "Equal jitter": half fixed, half random, so retries from many
                    // conversations spread out but still wait.
                    let half = ceiling / 2;
                    let pause = half + half.mul_f64(rand::rng().random_range(0.0..=1.0));
                    tracing::warn!(order_id, retry = retry + 1, reason = %why, pause_ms = pause.as_millis(), "order lookup failed; retrying");
                    tokio::time::sleep(pause).await;
                    retry += 1;
                }
            }
        }
    }
}
