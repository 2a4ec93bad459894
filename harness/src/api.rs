//! api: a small HTTP client for the services, as a frontend would use them (tests and tools).

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

/// One answer: status and JSON body (problem+json for errors).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
    /// When to try again, where the answer says (`Retry-After` in seconds).
    pub retry_after: Option<std::time::Duration>,
    /// The answer was given before, to a command with the same `Idempotency-Key`
    /// (`Idempotent-Replayed: true`).
    pub replayed: bool,
    /// The request's id as the answer names it (`X-Request-Id`).
    pub request_id: Option<String>,
}

impl Reply {
    pub fn is(&self, status: u16) -> bool {
        self.status.as_u16() == status
    }

    /// The body's field `key` as a string ("" when missing).
    pub fn str(&self, key: &str) -> String {
        self.body[key].as_str().unwrap_or_default().to_owned()
    }

    /// Panics with the whole reply unless the status is `status`.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status}, got {} {}",
            self.status,
            self.body
        );
        self
    }

    /// Panics with the whole reply unless it is the problem+json of type `/problems/{slug}`
    /// with `status` (a refusal told apart from any other failure by its type).
    #[track_caller]
    pub fn expect_problem(self, status: u16, slug: &str) -> Reply {
        let reply = self.expect(status);
        assert_eq!(
            reply.content_type, "application/problem+json",
            "not a problem: {reply:?}"
        );
        assert_eq!(
            reply.body["type"],
            format!("/problems/{slug}"),
            "expected the problem {slug}, got {}",
            reply.body
        );
        reply
    }
}

#[derive(Clone)]
pub struct Api {
    client: Client,
    base: String,
}

impl Api {
    pub fn new(base: impl Into<String>) -> Self {
        Api {
            client: Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("a plain HTTP client always builds"),
            base: base.into(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<RawBody<'_>>,
    ) -> anyhow::Result<Reply> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req = match body {
            Some(RawBody::Json(v)) => req.json(v),
            Some(RawBody::Text(t)) => req
                .header("content-type", "application/json")
                .body(t.to_owned()),
            None => req,
        };
        let resp = req.send().await?;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .map(std::time::Duration::from_secs);
        let replayed = resp
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let request_id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Reply {
            status,
            content_type,
            body,
            retry_after,
            replayed,
            request_id,
        })
    }

    /// A GET whose body is read by the caller as it arrives (server-sent events).
    pub async fn get_streaming(
        &self,
        path: &str,
        token: &str,
    ) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .timeout(std::time::Duration::from_secs(120))
            .send()
            .await?)
    }

    /// The sum of the series `name` in the service's `/metrics` whose labels include `labels`
    /// (0 when there is none).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> anyhow::Result<f64> {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        Ok(metric_sum(&text, name, labels))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Reply> {
        self.send(Method::GET, path, token, &[], None).await
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Reply> {
        self.send(Method::POST, path, token, &[], Some(RawBody::Json(body)))
            .await
    }
}

/// The sum of the series `name{…}` in Prometheus text whose labels include `labels`.
fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let all = labels.iter().all(|(k, v)| {
                series_labels
                    .split(',')
                    .any(|kv| kv == format!("{k}=\"{v}\""))
            });
            (series_name == name && all).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// A request body: JSON, or raw text sent as JSON (to test malformed input).
pub enum RawBody<'a> {
    Json(&'a Value),
    Text(&'a str),
}

#[cfg(test)]
mod tests {
    #[test]
    fn series_are_summed_by_name_and_labels() {
        let text = "# TYPE x counter\nx{a=\"1\",b=\"2\"} 3\nx{a=\"1\",b=\"3\"} 4\nx_count 9\ny 1\n";
        assert_eq!(super::metric_sum(text, "x", &[("a", "1")]), 7.0);
        assert_eq!(super::metric_sum(text, "x", &[("b", "3")]), 4.0);
        assert_eq!(super::metric_sum(text, "x_count", &[]), 9.0);
        assert_eq!(super::metric_sum(text, "z", &[]), 0.0);
    }
}
