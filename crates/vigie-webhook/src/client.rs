//! The HTTP client deliveries go through: connections reused, a 15 s timeout, redirects not
//! followed, and every address a host name resolves to checked where the connection is made
//! (a name that resolved to a public address when the webhook was saved can point at
//! 169.254.169.254 later: DNS rebinding). A response's body is read up to 64 KiB (so the
//! connection can be reused) and its first KiB kept for the delivery log.
use crate::destination::{DestinationError, check_addresses, check_url};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How much of a response body is kept in the delivery log.
pub const EXCERPT_BYTES: usize = 1024;
/// How much of a response body is read at most (the rest is dropped with the connection).
const READ_AT_MOST: usize = 64 * 1024;

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The whole request, connect to last byte.
    pub timeout: Duration,
    /// Whether private, loopback and link-local destinations are allowed.
    pub allow_private: bool,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Exact addresses (IP literal and port) allowed over plain http although private: the
    /// all-in-one server's own XDR intake on loopback, and nothing else.
    pub trusted: Vec<SocketAddr>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(15),
            allow_private: false,
            user_agent: format!("Vigie-Webhooks/{}", env!("CARGO_PKG_VERSION")),
            trusted: Vec::new(),
        }
    }
}

/// What one request gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The response status, if a response came.
    pub status: Option<u16>,
    /// The network or protocol error, if no response came (never names the URL).
    pub error: Option<String>,
    /// From sending the request to the end of the body read.
    pub latency: Duration,
    /// The first KiB of the response body (lossy UTF-8).
    pub excerpt: String,
    /// The response's `Retry-After`, as written.
    pub retry_after: Option<String>,
}

impl Outcome {
    /// A 2xx answer.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// 410 Gone: the receiver asks never to be called again.
    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }

    /// The status, or the error, in a few words.
    pub fn summary(&self) -> String {
        match (&self.status, &self.error) {
            (Some(s), _) => format!("HTTP {s}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "no answer".into(),
        }
    }
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// Destination.
    pub url: String,
    /// Headers, the signature's included.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Content type.
    pub content_type: &'static str,
}

/// Resolves host names and refuses the ones that point anywhere not public (unless allowed).
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let ips: Vec<_> = addrs.iter().map(SocketAddr::ip).collect();
            check_addresses(&ips, allow_private).map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a request failed because its destination was refused (a private address, where
/// those are not allowed): trying again will not help.
pub fn refused_destination(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<DestinationError>().is_some() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The delivery client; cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    allow_private: bool,
    trusted: Vec<SocketAddr>,
}

impl Client {
    /// A client with `opts`.
    pub fn new(opts: &ClientOptions) -> Result<Client, String> {
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            // No proxy from the environment: through a proxy, the address check would judge the
            // proxy, not the destination.
            .no_proxy()
            .user_agent(opts.user_agent.clone())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .dns_resolver(std::sync::Arc::new(GuardedResolver { allow_private: opts.allow_private }))
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(Client { http, allow_private: opts.allow_private, trusted: opts.trusted.clone() })
    }

    /// The underlying HTTP client, for requests other than a delivery (a playbook's
    /// `http_request`): its resolver refuses private addresses unless allowed, it follows no
    /// redirect and ignores proxy settings. Check the URL with [`Client::check_url`] first.
    pub fn guarded(&self) -> &reqwest::Client {
        &self.http
    }

    /// Whether private destinations are allowed.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Checks a URL's form as the client will (https, no credentials, a public IP literal).
    pub fn check_url(&self, url: &str) -> Result<url::Url, DestinationError> {
        if let Ok(u) = url::Url::parse(url.trim())
            && u.username().is_empty()
            && u.password().is_none()
            && matches!(u.scheme(), "http" | "https")
            && let Some(host) = u.host()
            && let Some(port) = u.port_or_known_default()
        {
            let ip = match host {
                url::Host::Ipv4(ip) => Some(std::net::IpAddr::V4(ip)),
                url::Host::Ipv6(ip) => Some(std::net::IpAddr::V6(ip)),
                url::Host::Domain(_) => None,
            };
            if ip.is_some_and(|ip| self.trusted.contains(&SocketAddr::new(ip, port))) {
                return Ok(u);
            }
        }
        check_url(url, self.allow_private)
    }

    /// Sends `req` and reports what came back. Never fails: a refused destination, a network
    /// error or a timeout is an outcome like a status code.
    pub async fn send(&self, req: Request) -> Outcome {
        let started = Instant::now();
        let failed = |error: String, started: Instant| Outcome {
            status: None,
            error: Some(error),
            latency: started.elapsed(),
            excerpt: String::new(),
            retry_after: None,
        };
        let url = match self.check_url(&req.url) {
            Ok(u) => u,
            Err(e) => return failed(e.to_string(), started),
        };
        let mut builder = self.http.post(url).header(reqwest::header::CONTENT_TYPE, req.content_type);
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut resp = match builder.body(req.body).send().await {
            Ok(r) => r,
            Err(e) => return failed(describe(&e), started),
        };
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut body = Vec::new();
        let mut read_error = None;
        while body.len() < READ_AT_MOST {
            match resp.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(describe(&e));
                    break;
                }
            }
        }
        body.truncate(EXCERPT_BYTES);
        let mut excerpt = String::from_utf8_lossy(&body).into_owned();
        if let Some(e) = read_error {
            excerpt.push_str(&format!(" [body cut: {e}]"));
        }
        Outcome { status: Some(status), error: None, latency: started.elapsed(), excerpt, retry_after }
    }
}

/// An error and its causes in one line, without the URL (a Slack or Discord webhook URL is a
/// credential).
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "redirect"
    } else {
        "request failed"
    };
    let mut parts = vec![kind.to_owned()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
