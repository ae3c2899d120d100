//! Python bindings of Cambio's client SDK (`cambio-client`): the module `cambio_sdk`.
//!
//! Thin by design: every call is one call of the Rust [`cambio_client::Client`], driven on the
//! Tokio runtime the module holds, from the calling Python thread with the GIL released
//! (`Client`), or from a thread of the asyncio loop's default executor (`AsyncClient`, whose
//! calls are awaitables of `loop.run_in_executor`). So no thread of Tokio's ever touches the
//! interpreter: a Tokio thread that takes the GIL while Python shuts down aborts the process
//! (pyo3-async-runtimes issue #40), which is why that crate is not used. No rule of the SDK
//! (the cache, its keys and renewal margin, refreshes, transport checks, the trace context's
//! form) is written here again, and the internal access and refresh tokens have no way out:
//! the Rust client keeps them and this module only ever sees the tokens exchanged for an
//! audience.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use cambio_client as sdk;
use pyo3::IntoPyObjectExt as _;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyCFunction;

create_exception!(
    cambio_sdk,
    CambioError,
    PyException,
    "Any failure of the SDK. `error`, `error_description` and `status` hold the server's OAuth \
     error when there was one, else None."
);
create_exception!(
    cambio_sdk,
    LoginRequired,
    CambioError,
    "The user must log in again: there is no session, or the server refused the refresh token."
);
create_exception!(
    cambio_sdk,
    OAuthError,
    CambioError,
    "The server answered with an OAuth error (`error`, `error_description`, `status`)."
);
create_exception!(
    cambio_sdk,
    InvalidRequest,
    CambioError,
    "The request itself is invalid (an empty audience, a malformed traceparent, ...)."
);

/// The SDK's error as a Python exception of the matching class, carrying the server's OAuth
/// error as attributes.
fn to_py_err(py: Python<'_>, error: sdk::Error) -> PyErr {
    let message = error.to_string();
    let exception = match &error {
        sdk::Error::LoginRequired(_) => LoginRequired::new_err(message),
        sdk::Error::OAuth(_) => OAuthError::new_err(message),
        sdk::Error::InvalidRequest(_) => InvalidRequest::new_err(message),
        _ => CambioError::new_err(message),
    };
    {
        let value = exception.value(py);
        let oauth = error.oauth();
        let attributes = [
            ("error", oauth.map(|e| e.error.clone().into_pyobject(py))),
            (
                "error_description",
                oauth
                    .and_then(|e| e.error_description.clone())
                    .map(|d| d.into_pyobject(py)),
            ),
        ];
        for (name, text) in attributes {
            // Setting an attribute of a fresh exception instance cannot fail in practice;
            // if it did, the exception would still carry its message.
            let _ = match text {
                Some(Ok(text)) => value.setattr(name, text),
                _ => value.setattr(name, py.None()),
            };
        }
        let _ = value.setattr("status", oauth.map(|e| e.status));
    }
    exception
}

/// The module's Tokio runtime: the SDK's HTTP, its cache's single flights and the event
/// worker run on it.
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("cambio-sdk")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| CambioError::new_err(format!("cannot start the runtime: {e}")))
}

/// Runs `future` to its end from this thread, with the GIL released meanwhile.
fn blocking<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = sdk::Result<T>> + Send,
    T: Send,
{
    let runtime = runtime()?;
    py.detach(|| runtime.block_on(future))
        .map_err(|e| to_py_err(py, e))
}

/// An asyncio awaitable of `future`'s result: the running loop's default executor runs it
/// (as [`blocking`] does), so the loop itself never waits. Raises RuntimeError outside a
/// running loop, like any asyncio call.
fn awaitable<'py, T, F>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = sdk::Result<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = Mutex::new(Some(future));
    let call = PyCFunction::new_closure(py, None, None, move |args, _| {
        let py = args.py();
        let future = future
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| CambioError::new_err("this call was already made"))?;
        blocking(py, future)?.into_py_any(py)
    })?;
    event_loop.call_method1("run_in_executor", (py.None(), call))
}

/// What both clients are built from.
struct Config {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    token_file: Option<PathBuf>,
    timeout: Duration,
    /// Whether the client holds a DPoP key (RFC 9449), generated here and never exported.
    dpop: bool,
}

impl Config {
    fn new(
        issuer: String,
        client_id: String,
        client_secret: Option<String>,
        token_file: Option<PathBuf>,
        timeout: f64,
        dpop: bool,
    ) -> PyResult<Config> {
        let timeout = Duration::try_from_secs_f64(timeout)
            .map_err(|_| PyValueError::new_err("timeout must be a positive number of seconds"))?;
        Ok(Config {
            issuer,
            client_id,
            client_secret,
            token_file,
            timeout,
            dpop,
        })
    }

    /// Builds the client (reading the discovery document) and starts its event worker; must
    /// run on the module's runtime.
    async fn build(self) -> sdk::Result<Shared> {
        let mut builder = sdk::Client::builder(self.issuer, self.client_id).timeout(self.timeout);
        if let Some(secret) = self.client_secret {
            builder = builder.client_secret(secret);
        }
        if let Some(path) = self.token_file {
            builder = builder.token_store(Arc::new(sdk::FileTokenStore::new(path)));
        }
        if self.dpop {
            let key = sdk::SigningKey::generate(sdk::Algorithm::Es256)
                .map_err(|e| sdk::Error::Config(format!("DPoP key: {e}")))?;
            builder = builder.dpop_key(key);
        }
        let client = builder.build().await?;
        let events = client.event_handle();
        Ok(Shared { client, events })
    }
}

/// The Rust client and its event handle, behind both Python classes.
#[derive(Clone)]
struct Shared {
    client: sdk::Client,
    events: sdk::EventHandle,
}

impl Shared {
    async fn login_password(self, username: String, password: String) -> sdk::Result<()> {
        self.client.login_password(&username, &password).await
    }

    async fn login_client_credentials(self) -> sdk::Result<()> {
        self.client.login_client_credentials().await
    }

    async fn restore(self) -> sdk::Result<()> {
        self.client.restore().await
    }

    async fn logout(self) -> sdk::Result<()> {
        self.client.logout().await
    }

    async fn logged_in(self) -> sdk::Result<bool> {
        Ok(self.client.is_logged_in().await)
    }

    async fn exchange(self, request: sdk::ExchangeRequest) -> sdk::Result<ExchangedToken> {
        self.client.exchange(request).await.map(ExchangedToken)
    }

    async fn claims(self) -> sdk::Result<JsonObject> {
        self.client.access_token_claims().await.map(JsonObject)
    }

    async fn browser_login(self, scope: Option<String>) -> sdk::Result<BrowserLogin> {
        let login = self.client.browser_login(scope.as_deref()).await?;
        Ok(BrowserLogin {
            authorization_url: login.authorization_url().to_owned(),
            redirect_uri: login.redirect_uri().to_owned(),
            login: Arc::new(Mutex::new(Some(login))),
        })
    }

    async fn send(self, event: sdk::Event) -> sdk::Result<Answer> {
        answer(self.events.send(event).await)
    }
}

fn answer(result: sdk::ResultEvent) -> sdk::Result<Answer> {
    match result {
        sdk::ResultEvent::ExchangeIamTokenResult(token) => {
            token.map(|t| Answer::Token(ExchangedToken(t)))
        }
        sdk::ResultEvent::GetIamAccessTokenClaimsResult(claims) => {
            claims.map(|c| Answer::Claims(JsonObject(c)))
        }
    }
}

/// The arguments of `exchange`, as the SDK's request.
fn exchange_request(
    audience: String,
    scope: Option<String>,
    requested_token_type: Option<String>,
    force_update: bool,
    trace_parent: Option<String>,
    trace_state: Option<String>,
) -> sdk::ExchangeRequest {
    sdk::ExchangeRequest {
        audience,
        scope,
        requested_token_type,
        force_update,
        trace_parent,
        trace_state,
    }
}

/// A client of one realm whose calls block the calling thread (the GIL is released while
/// they wait). Thread-safe: threads may share one client, and share its cache.
///
/// Client(issuer, client_id, *, client_secret=None, token_file=None, timeout=30.0, dpop=False) reads the
/// realm's discovery document. With `token_file`, the refresh token is kept in that file
/// (mode 0600) between runs; `restore()` resumes it.
#[pyclass(frozen, module = "cambio_sdk")]
struct Client {
    shared: Shared,
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (issuer, client_id, *, client_secret=None, token_file=None, timeout=30.0, dpop=false))]
    fn new(
        py: Python<'_>,
        issuer: String,
        client_id: String,
        client_secret: Option<String>,
        token_file: Option<PathBuf>,
        timeout: f64,
        dpop: bool,
    ) -> PyResult<Client> {
        let config = Config::new(issuer, client_id, client_secret, token_file, timeout, dpop)?;
        let shared = blocking(py, config.build())?;
        Ok(Client { shared })
    }

    /// The realm's issuer URL.
    #[getter]
    fn issuer(&self) -> &str {
        self.shared.client.issuer()
    }

    /// A DPoP proof for sending `token` (an exchanged token of this client) in a `method`
    /// request to `url`: put it in the `DPoP` header, with `Authorization: DPoP <token>`.
    /// None when the client was made without `dpop=True`.
    fn dpop_proof(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        token: &str,
    ) -> PyResult<Option<String>> {
        self.shared
            .client
            .dpop_proof(method, url, token)
            .map_err(|e| to_py_err(py, e))
    }

    /// The client id.
    #[getter]
    fn client_id(&self) -> &str {
        self.shared.client.client_id()
    }

    /// Whether there is a session (it may still turn out to be ended at the server).
    fn is_logged_in(&self, py: Python<'_>) -> PyResult<bool> {
        blocking(py, self.shared.clone().logged_in())
    }

    /// Logs a user in with the password grant; replaces any session, empties the cache.
    fn login_password(&self, py: Python<'_>, username: String, password: String) -> PyResult<()> {
        blocking(py, self.shared.clone().login_password(username, password))
    }

    /// Logs the client itself in (client credentials).
    fn login_client_credentials(&self, py: Python<'_>) -> PyResult<()> {
        blocking(py, self.shared.clone().login_client_credentials())
    }

    /// Resumes the session kept in `token_file`; LoginRequired when there is none or it ended.
    fn restore(&self, py: Python<'_>) -> PyResult<()> {
        blocking(py, self.shared.clone().restore())
    }

    /// Starts a browser login (authorization code with PKCE, loopback redirect): open its
    /// `authorization_url` in a browser, then call `finish()`.
    #[pyo3(signature = (scope=None))]
    fn browser_login(&self, py: Python<'_>, scope: Option<String>) -> PyResult<BrowserLogin> {
        blocking(py, self.shared.clone().browser_login(scope))
    }

    /// A token for `audience`: from the cache while it has enough life left, else exchanged
    /// for the internal token (RFC 8693). `trace_parent`/`trace_state` (W3C) go with the
    /// request when one is made.
    #[pyo3(signature = (audience, *, scope=None, requested_token_type=None, force_update=false, trace_parent=None, trace_state=None))]
    #[allow(clippy::too_many_arguments)]
    fn exchange(
        &self,
        py: Python<'_>,
        audience: String,
        scope: Option<String>,
        requested_token_type: Option<String>,
        force_update: bool,
        trace_parent: Option<String>,
        trace_state: Option<String>,
    ) -> PyResult<ExchangedToken> {
        let request = exchange_request(
            audience,
            scope,
            requested_token_type,
            force_update,
            trace_parent,
            trace_state,
        );
        blocking(py, self.shared.clone().exchange(request))
    }

    /// The verified claims of a fresh internal access token, as a dict (one round trip).
    fn claims(&self, py: Python<'_>) -> PyResult<JsonObject> {
        blocking(py, self.shared.clone().claims())
    }

    /// Revokes the session at the server and forgets it here (and in `token_file`).
    fn logout(&self, py: Python<'_>) -> PyResult<()> {
        blocking(py, self.shared.clone().logout())
    }

    /// The event API: `send(ExchangeIamToken(...))` answers an ExchangedToken,
    /// `send(GetIamAccessTokenClaims())` a dict of claims; failures raise.
    fn send(&self, py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<Answer> {
        let event = event_from(event)?;
        let events = self.shared.events.clone();
        answer(py.detach(|| events.send_blocking(event))).map_err(|e| to_py_err(py, e))
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.shared.client)
    }
}

/// The same client with asyncio calls: `client = await AsyncClient.connect(...)`, then
/// `await client.exchange(...)` and so on. The calls run on the module's Tokio runtime, so
/// the asyncio loop is never blocked.
#[pyclass(frozen, module = "cambio_sdk")]
struct AsyncClient {
    shared: Shared,
}

#[pymethods]
impl AsyncClient {
    /// Reads the realm's discovery document and answers the client.
    #[staticmethod]
    #[pyo3(signature = (issuer, client_id, *, client_secret=None, token_file=None, timeout=30.0, dpop=false))]
    fn connect(
        py: Python<'_>,
        issuer: String,
        client_id: String,
        client_secret: Option<String>,
        token_file: Option<PathBuf>,
        timeout: f64,
        dpop: bool,
    ) -> PyResult<Bound<'_, PyAny>> {
        let config = Config::new(issuer, client_id, client_secret, token_file, timeout, dpop)?;
        awaitable(py, async move {
            Ok(AsyncClient {
                shared: config.build().await?,
            })
        })
    }

    #[getter]
    fn issuer(&self) -> &str {
        self.shared.client.issuer()
    }

    /// A DPoP proof for sending `token` (an exchanged token of this client) in a `method`
    /// request to `url`: put it in the `DPoP` header, with `Authorization: DPoP <token>`.
    /// None when the client was made without `dpop=True`.
    fn dpop_proof(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        token: &str,
    ) -> PyResult<Option<String>> {
        self.shared
            .client
            .dpop_proof(method, url, token)
            .map_err(|e| to_py_err(py, e))
    }

    #[getter]
    fn client_id(&self) -> &str {
        self.shared.client.client_id()
    }

    fn is_logged_in<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.shared.clone().logged_in())
    }

    fn login_password<'py>(
        &self,
        py: Python<'py>,
        username: String,
        password: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let call = self.shared.clone().login_password(username, password);
        awaitable(py, call)
    }

    fn login_client_credentials<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let call = self.shared.clone().login_client_credentials();
        awaitable(py, call)
    }

    fn restore<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.shared.clone().restore())
    }

    #[pyo3(signature = (scope=None))]
    fn browser_login<'py>(
        &self,
        py: Python<'py>,
        scope: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.shared.clone().browser_login(scope))
    }

    #[pyo3(signature = (audience, *, scope=None, requested_token_type=None, force_update=false, trace_parent=None, trace_state=None))]
    #[allow(clippy::too_many_arguments)]
    fn exchange<'py>(
        &self,
        py: Python<'py>,
        audience: String,
        scope: Option<String>,
        requested_token_type: Option<String>,
        force_update: bool,
        trace_parent: Option<String>,
        trace_state: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = exchange_request(
            audience,
            scope,
            requested_token_type,
            force_update,
            trace_parent,
            trace_state,
        );
        awaitable(py, self.shared.clone().exchange(request))
    }

    fn claims<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.shared.clone().claims())
    }

    fn logout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.shared.clone().logout())
    }

    fn send<'py>(&self, py: Python<'py>, event: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let event = event_from(event)?;
        awaitable(py, self.shared.clone().send(event))
    }

    fn __repr__(&self) -> String {
        format!("Async{:?}", self.shared.client)
    }
}

/// A token issued for one audience. Its `repr` leaves the token out, so that logging the
/// object does not leak it.
#[pyclass(frozen, module = "cambio_sdk")]
struct ExchangedToken(sdk::ExchangedToken);

#[pymethods]
impl ExchangedToken {
    /// The token, to send as `Authorization: Bearer <token>` to the audience.
    #[getter]
    fn token(&self) -> &str {
        self.0.token()
    }

    /// The `token_type` of the response (`Bearer`, or `DPoP` for a client made with `dpop=True`).
    #[getter]
    fn token_type(&self) -> &str {
        self.0.token_type()
    }

    /// RFC 8693 `issued_token_type`.
    #[getter]
    fn issued_token_type(&self) -> &str {
        self.0.issued_token_type()
    }

    /// The scopes the token carries, space-separated.
    #[getter]
    fn scope(&self) -> &str {
        self.0.scope()
    }

    /// When the token expires, in seconds since the Unix epoch.
    #[getter]
    fn expires_at(&self) -> f64 {
        self.0
            .expires_at()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    }

    /// How long the token was valid for when issued, in seconds.
    #[getter]
    fn lifetime(&self) -> f64 {
        self.0.lifetime().as_secs_f64()
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// A browser login under way: `authorization_url` is for the browser, the redirect comes
/// back to `redirect_uri` on this machine. `finish()` (or `await finish_async()`) waits for it.
#[pyclass(frozen, module = "cambio_sdk")]
struct BrowserLogin {
    #[pyo3(get)]
    authorization_url: String,
    #[pyo3(get)]
    redirect_uri: String,
    login: Arc<Mutex<Option<sdk::BrowserLogin>>>,
}

impl BrowserLogin {
    fn take(&self) -> PyResult<sdk::BrowserLogin> {
        self.login
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| CambioError::new_err("this browser login was already finished"))
    }
}

#[pymethods]
impl BrowserLogin {
    /// Waits up to `timeout` seconds for the redirect, then starts the session.
    #[pyo3(signature = (timeout=300.0))]
    fn finish(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let timeout = seconds(timeout)?;
        let login = self.take()?;
        blocking(py, login.finish(timeout))
    }

    /// `finish()` as an awaitable.
    #[pyo3(signature = (timeout=300.0))]
    fn finish_async<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(timeout)?;
        let login = self.take()?;
        awaitable(py, login.finish(timeout))
    }
}

fn seconds(value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err("timeout must be a positive number of seconds"))
}

/// The event asking for a token for `audience`, the SDK's `ExchangeIamTokenEvent`.
#[pyclass(frozen, module = "cambio_sdk", get_all)]
struct ExchangeIamToken {
    audience: String,
    force_update: bool,
    trace_parent: Option<String>,
    trace_state: Option<String>,
}

#[pymethods]
impl ExchangeIamToken {
    #[new]
    #[pyo3(signature = (audience, *, force_update=false, trace_parent=None, trace_state=None))]
    fn new(
        audience: String,
        force_update: bool,
        trace_parent: Option<String>,
        trace_state: Option<String>,
    ) -> ExchangeIamToken {
        ExchangeIamToken {
            audience,
            force_update,
            trace_parent,
            trace_state,
        }
    }
}

/// The event asking for the claims of a fresh internal access token.
#[pyclass(frozen, module = "cambio_sdk")]
struct GetIamAccessTokenClaims;

#[pymethods]
impl GetIamAccessTokenClaims {
    #[new]
    fn new() -> GetIamAccessTokenClaims {
        GetIamAccessTokenClaims
    }
}

fn event_from(event: &Bound<'_, PyAny>) -> PyResult<sdk::Event> {
    if let Ok(exchange) = event.cast::<ExchangeIamToken>() {
        let exchange = exchange.get();
        return Ok(sdk::Event::ExchangeIamToken {
            audience: exchange.audience.clone(),
            force_update: exchange.force_update,
            trace_context: exchange
                .trace_parent
                .clone()
                .map(|trace_parent| sdk::TraceContext {
                    trace_parent,
                    trace_state: exchange.trace_state.clone(),
                }),
        });
    }
    if event.cast::<GetIamAccessTokenClaims>().is_ok() {
        return Ok(sdk::Event::GetIamAccessTokenClaims);
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "send() takes an ExchangeIamToken or a GetIamAccessTokenClaims",
    ))
}

/// Claims, handed to Python as a dict through its own JSON reader.
struct JsonObject(sdk::Claims);

impl<'py> IntoPyObject<'py> for JsonObject {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::Value::Object(self.0).to_string();
        py.import("json")?.call_method1("loads", (text,))
    }
}

/// The answer to an event: a token or claims.
enum Answer {
    Token(ExchangedToken),
    Claims(JsonObject),
}

impl<'py> IntoPyObject<'py> for Answer {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Answer::Token(token) => Ok(Bound::new(py, token)?.into_any()),
            Answer::Claims(claims) => claims.into_pyobject(py),
        }
    }
}

#[pymodule]
fn cambio_sdk(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<Client>()?;
    module.add_class::<AsyncClient>()?;
    module.add_class::<ExchangedToken>()?;
    module.add_class::<BrowserLogin>()?;
    module.add_class::<ExchangeIamToken>()?;
    module.add_class::<GetIamAccessTokenClaims>()?;
    module.add("CambioError", py.get_type::<CambioError>())?;
    module.add("LoginRequired", py.get_type::<LoginRequired>())?;
    module.add("OAuthError", py.get_type::<OAuthError>())?;
    module.add("InvalidRequest", py.get_type::<InvalidRequest>())?;
    Ok(())
}
