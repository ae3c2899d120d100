package cambio.sdk.example

import cambio.sdk.CambioClient
import cambio.sdk.CambioException
import cambio.sdk.Event
import cambio.sdk.ExchangeRequest
import cambio.sdk.ResultEvent
import kotlinx.coroutines.runBlocking

/**
 * Log in, get tokens for two backends, read the internal token's claims, log out.
 *
 * Against a server started with `cambio serve --demo` (CambioClientTest runs it against its
 * own server):
 *
 *     java -cp <the jar and its dependencies> cambio.sdk.example.ExchangeKt http://127.0.0.1:8080/realms/demo
 *
 * The session is kept in ./example-session.json (mode 0600): a second run resumes it.
 */
fun main(args: Array<String>) = runBlocking {
    exchangeExample(args.firstOrNull() ?: "http://127.0.0.1:8080/realms/demo", "example-session.json")
}

suspend fun exchangeExample(issuer: String, tokenFile: String): List<String> {
    val lines = mutableListOf<String>()
    CambioClient.connect(issuer, "sdk-app", clientSecret = "sdk-secret", tokenFile = tokenFile).use { client ->
        // Resume the stored session, or log in when there is none (or it ended).
        try {
            client.restore()
            lines += "resumed the stored session"
        } catch (e: CambioException.LoginRequired) {
            client.loginPassword("alice", "alice")
            lines += "logged in as alice"
        }

        // A token per backend; the second request for orders-api comes from the cache.
        val orders = client.exchange(ExchangeRequest(audience = "orders-api"))
        check(client.exchange(ExchangeRequest(audience = "orders-api")).token() == orders.token())
        val billing = client.exchange(
            ExchangeRequest(audience = "billing-api", traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        )
        lines += "orders-api: $orders"
        lines += "billing-api: $billing"

        // The same through the event API, as an event-loop app would ask.
        val answer = client.send(Event.ExchangeIamToken("orders-api", false, null, null))
        if (answer is ResultEvent.ExchangeIamTokenResult) {
            lines += "event API: orders-api token expires at ${answer.token.expiresAtEpochSeconds()}"
        }
        lines += "claims: ${client.claimsJson()}"
        client.logout()
        lines += "logged out"
    }
    lines.forEach(::println)
    return lines
}
