//! The web page in a real headless Chromium, driven over WebDriver: a user books and pays and
//! sees `confirmed`; a second browser sees the seat turn held, then sold, without reloading; a
//! payment refused for lack of points shows the reason. `BLESS=1` writes the screenshots the
//! README shows (`docs/screenshots/`).

use crate::helpers::on_system;
use anyhow::Context as _;
use e2e::system::Options;
use e2e::{Frontend, Gateway, eventually, flows};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::time::Duration;

/// How long the page may take to show what a step expects.
const PAGE: Duration = Duration::from_secs(20);

/// A headless Chromium at phone width, through `driver`.
async fn browser(driver: &harness::Chromedriver) -> anyhow::Result<Client> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": harness::CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=430,1400"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(driver.url())
        .await
        .context("open a Chromium session")
}

/// The element `testid`, with `extra` CSS after it (e.g. `[data-label="S1"]`).
fn by(testid: &str, extra: &str) -> String {
    format!("[data-testid=\"{testid}\"]{extra}")
}

/// Waits until the element `css` exists and its text contains `text`.
async fn wait_text(page: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    eventually(&format!("{css} to read {text:?}"), PAGE, async || {
        let Ok(e) = page.find(Locator::Css(css)).await else {
            return Ok(None);
        };
        Ok(e.text().await?.contains(text).then_some(()))
    })
    .await
}

/// Waits until the element `css` has `attr` = `value`.
async fn wait_attr(page: &Client, css: &str, attr: &str, value: &str) -> anyhow::Result<()> {
    eventually(&format!("{css} to have {attr}={value}"), PAGE, async || {
        let Ok(e) = page.find(Locator::Css(css)).await else {
            return Ok(None);
        };
        Ok((e.attr(attr).await?.as_deref() == Some(value)).then_some(()))
    })
    .await
}

async fn click(page: &Client, css: &str) -> anyhow::Result<()> {
    // Waits for it: the page renders what the API answers.
    eventually(&format!("{css} to be clickable"), PAGE, async || {
        let Ok(e) = page.find(Locator::Css(css)).await else {
            return Ok(None);
        };
        if !e.is_enabled().await? {
            return Ok(None);
        }
        Ok(e.click().await.ok())
    })
    .await
}

async fn type_into(page: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    let input = page.find(Locator::Css(css)).await?;
    input.clear().await?;
    input.send_keys(text).await?;
    Ok(())
}

/// Screenshots for the README, written only when blessing.
async fn screenshot(page: &Client, name: &str) -> anyhow::Result<()> {
    if std::env::var_os("BLESS").is_none() {
        return Ok(());
    }
    let dir = harness::workspace_root().join("docs/screenshots");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.png")), page.screenshot().await?)?;
    Ok(())
}

/// Signs `user` in and opens the concert's first date: the seat map shows once the queue lets
/// them in.
async fn sign_in_and_open(
    gw: &Gateway,
    page: &Client,
    user: &str,
    concert: &str,
) -> anyhow::Result<()> {
    page.goto(gw.url()).await?;
    type_into(page, &by("login-user", ""), user).await?;
    click(page, &by("login-submit", "")).await?;
    wait_text(page, &by("balance", ""), "0").await?;
    click(
        page,
        &format!("{}[data-title=\"{concert}\"]", by("concert", "")),
    )
    .await?;
    click(page, &by("schedule", "")).await?;
    wait_attr(page, &by("queue-position", ""), "data-status", "active").await?;
    wait_attr(
        page,
        &by("seat", "[data-label=\"S1\"]"),
        "data-status",
        "available",
    )
    .await
}

#[tokio::test]
async fn a_user_books_and_pays_in_the_browser_while_another_watches_the_seat_go() {
    on_system(Options::default(), async |sys| {
        let gw = Gateway::start(sys, &[]).await?;
        let concert = "Browser Ballads";
        flows::open_schedule(&gw.client(), concert, &flows::numbered_seats("S", 12, 100)).await?;
        let driver = harness::Chromedriver::start()?;
        let (alice, bob) = (browser(&driver).await?, browser(&driver).await?);

        alice.goto(gw.url()).await?;
        screenshot(&alice, "1-sign-in").await?;
        sign_in_and_open(&gw, &alice, "alice", concert).await?;
        sign_in_and_open(&gw, &bob, "bob", concert).await?;
        // Whatever bob sees from now on comes without a reload: this mark would be gone.
        bob.execute("window.notReloaded = true;", vec![]).await?;

        // alice charges 500 points, holds S1 and pays.
        type_into(&alice, &by("charge-amount", ""), "500").await?;
        click(&alice, &by("charge-submit", "")).await?;
        wait_text(&alice, &by("balance", ""), "500").await?;
        click(&alice, &by("seat", "[data-label=\"S1\"]")).await?;
        screenshot(&alice, "2-seat-map").await?;
        click(&alice, &by("hold", "")).await?;
        wait_text(&alice, &by("reservation-status", ""), "awaiting_payment").await?;
        wait_attr(
            &bob,
            &by("seat", "[data-label=\"S1\"]"),
            "data-status",
            "held",
        )
        .await?;
        screenshot(&alice, "3-held").await?;
        click(&alice, &by("pay", "")).await?;
        wait_text(&alice, &by("reservation-status", ""), "confirmed").await?;
        // The saga's timeline beside the status, down to the confirmation.
        wait_text(&alice, &by("timeline", ""), "reservation.confirmed.v1").await?;
        wait_text(&alice, &by("balance", ""), "400").await?;
        wait_text(&alice, &by("ticket", ""), concert).await?;
        screenshot(&alice, "4-confirmed").await?;
        wait_attr(
            &bob,
            &by("seat", "[data-label=\"S1\"]"),
            "data-status",
            "sold",
        )
        .await?;
        let kept = bob
            .execute("return window.notReloaded === true;", vec![])
            .await?;
        assert_eq!(kept, json!(true), "bob's page was reloaded");

        // bob has no points: his payment is refused, and the page says why.
        click(&bob, &by("seat", "[data-label=\"S2\"]")).await?;
        click(&bob, &by("hold", "")).await?;
        wait_text(&bob, &by("reservation-status", ""), "awaiting_payment").await?;
        click(&bob, &by("pay", "")).await?;
        wait_text(&bob, &by("reservation-status", ""), "failed").await?;
        wait_text(&bob, &by("reservation-reason", ""), "Not enough points").await?;
        screenshot(&bob, "5-payment-refused").await?;

        // A command the API refuses at once shows its problem's detail.
        let refused = gw
            .client()
            .payment
            .post(
                "/wallet/charge",
                Some(&gw.client().user_token("alice")),
                &json!({"amount": 2_000_000_000i64}),
            )
            .await?
            .expect(422);
        type_into(&alice, &by("charge-amount", ""), "2000000000").await?;
        click(&alice, &by("charge-submit", "")).await?;
        wait_text(&alice, &by("error", ""), &refused.str("detail")).await?;
        wait_text(&alice, &by("balance", ""), "400").await?;

        alice.close().await?;
        bob.close().await?;
        let report = sys.settle(Duration::from_secs(30)).await?;
        assert!(report.is_clean(), "{report}");
        Ok(())
    })
    .await;
}
