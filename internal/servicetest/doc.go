// Package servicetest provides what the integration tests of shipbot need
// to run the real service against the GitHub fake, as small pieces a rig
// composes (like net/http/httptest for net/http):
//
//   - the fake: NewGitHub (closed and schema-checked at cleanup), SeedRepo,
//     and Apps, GitHub App clients talking to it;
//   - the database: DBPath and OpenStore (a migrated SQLite file);
//   - the service: Listen and Start (service.New served on a loopback port,
//     stopped at cleanup), with Server.Stop for a graceful shutdown and
//     Server.Kill for a simulated crash;
//   - deliveries: Deliveries numbers them, Hook signs and sends them;
//   - waiting: Eventually and Wait poll a condition against a deadline,
//     and WaitProcessed waits until the inbox processed deliveries;
//   - logs: LogBuffer collects the service's logs and dumps them when the
//     test fails.
//
// It is for tests only.
package servicetest
