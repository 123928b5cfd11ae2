// asset-worker: turns device telemetry into asset telemetry (see README.md).

#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <thread>

#include "app/commands.h"
#include "app/config.h"
#include "common/redact.h"

namespace {

// Signals are blocked in every thread and taken here, synchronously: the first SIGTERM/SIGINT
// asks the worker to drain (SPEC D17), a second one exits at once.
std::thread start_signal_thread(std::atomic<bool>& stop, sigset_t set) {
  return std::thread([&stop, set] {
    int sig = 0;
    sigwait(&set, &sig);
    stop.store(true);
    std::fprintf(stderr,
                 "{\"level\":\"info\",\"msg\":\"signal received, draining\",\"signal\":%d}\n", sig);
    sigwait(&set, &sig);
    std::fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"second signal, exiting now\"}\n");
    std::_Exit(130);
  });
}

}  // namespace

namespace {

// The command line, then the chosen command.
int run_command(int argc, char** argv) {
  atw::Config config;
  CLI::App app{
      "asset-worker: device telemetry in, asset telemetry out (NATS JetStream, "
      "PostgreSQL, Redis)"};
  app.require_subcommand(1);
  atw::register_options(app, config);
  auto* run = app.add_subcommand("run", "Process telemetry until SIGTERM");
  auto* migrate = app.add_subcommand("migrate", "Create or update the database schema");
  auto* maintain = app.add_subcommand(
      "maintain", "Make telemetry_history's partitions ahead; drop those past the retention");
  auto* version = app.add_subcommand("version", "Print the version");
  auto* dlq = app.add_subcommand("dlq", "Inspect, replay or purge the dead-letter stream");
  dlq->require_subcommand(1);
  atw::DlqSelection selection;
  std::string dlq_action;
  auto* dlq_list = dlq->add_subcommand("list", "A table of the dead letters");
  auto* dlq_show = dlq->add_subcommand("show", "The whole record of the chosen dead letters");
  auto* dlq_replay = dlq->add_subcommand(
      "replay", "Republish the chosen originals to the input subject, then remove them");
  auto* dlq_purge = dlq->add_subcommand("purge", "Remove the chosen dead letters");
  for (auto* sub : {dlq_show, dlq_replay, dlq_purge}) {
    sub->add_option("--seq,seq", selection.sequences, "DLQ stream sequences");
    sub->add_option("--error-type", selection.error_type, "Every dead letter of this type");
    sub->add_flag("--all", selection.all, "Every dead letter");
  }
  dlq_show->add_flag("--payload", selection.payload_only,
                     "Print only the original payloads, byte for byte as they were published");
  auto* links = app.add_subcommand("links", "Device-to-asset link caches");
  links->require_subcommand(1);
  auto* links_invalidate = links->add_subcommand(
      "invalidate", "Purge cached links from Redis and from every running worker");
  std::string links_org, links_device;
  bool links_all = false;
  links_invalidate->add_option("--org", links_org, "Organization (tenant) id");
  links_invalidate->add_option("--device", links_device, "Device id");
  links_invalidate->add_flag("--all", links_all, "Every device");
  auto* formulas = app.add_subcommand("formulas", "Asset types' derived metrics and health rules");
  formulas->require_subcommand(1);
  auto* formulas_check =
      formulas->add_subcommand("check", "Compile every asset type's formulas; list each problem");
  auto* formulas_try = formulas->add_subcommand(
      "try", "Print the asset metrics and health score given asset metrics would give");
  std::string try_type, try_metrics;
  formulas_try->add_option("--asset-type", try_type, "Asset type id")->required();
  formulas_try->add_option("--metrics", try_metrics, "Asset metrics, a JSON object of numbers")
      ->required();
  auto* formulas_history = formulas->add_subcommand(
      "history", "Every recorded version of the asset types' telemetry_schema");
  std::string history_type;
  formulas_history->add_option("--asset-type", history_type, "Asset type id (default: all)");
  auto* reprocess = app.add_subcommand(
      "reprocess",
      "Write a time range again as today's links and asset types make it (dry run first)");
  atw::ReprocessRequest reprocess_request;
  reprocess->add_option("--from", reprocess_request.from, "Measurements from (RFC 3339)")
      ->required();
  reprocess->add_option("--to", reprocess_request.to, "Measurements before (RFC 3339)")->required();
  reprocess->add_option("--org", reprocess_request.org, "Only this organization (tenant)");
  reprocess->add_option("--device", reprocess_request.device, "Only this device");
  reprocess->add_option("--asset", reprocess_request.asset, "Only this asset's results");
  reprocess->add_option("--asset-type", reprocess_request.asset_type,
                        "Only the results of assets of this type");
  reprocess->add_option("--schema-version", reprocess_request.schema_version,
                        "With --asset-type: replay with this recorded version of its schema "
                        "(formulas history)");
  reprocess->add_flag("--dry-run", reprocess_request.dry_run,
                      "Write nothing; print what would change");
  reprocess->add_flag("--json", reprocess_request.json, "The summary as JSON");
  reprocess->add_flag("--resume", reprocess_request.resume,
                      "Go on with the stopped run of this same selection");
  reprocess
      ->add_option("--max-rate", reprocess_request.max_rate,
                   "Messages read per second at most (0: no limit)")
      ->check(CLI::Range(0.0, 1e9));
  reprocess->add_option("--batch", reprocess_request.batch, "Messages per transaction")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  auto* storage = app.add_subcommand(
      "storage", "Change the storage of a table another service created (plan first)");
  storage->require_subcommand(1);
  atw::StorageRequest storage_request;
  auto* storage_history = storage->add_subcommand(
      "history-partitions", "Convert telemetry_history to daily partitions, keeping every row");
  auto* storage_fillfactor = storage->add_subcommand(
      "assets-fillfactor", "Keep room on assets' pages so that score updates stay HOT");
  for (auto* sub : {storage_history, storage_fillfactor}) {
    sub->add_flag("--dry-run", storage_request.dry_run,
                  "Print the plan (statements, locks, a measured read of the table) only");
  }
  storage_fillfactor->add_option("--fillfactor", storage_request.fillfactor, "Percent, 10..100")
      ->check(CLI::Range(10, 100))
      ->capture_default_str();
  storage_fillfactor->add_flag("--repack", storage_request.repack,
                               "Also VACUUM FULL: repack the pages there are (locks the table)");
  for (auto* sub : {run, migrate, maintain, version, dlq, dlq_list, dlq_show, dlq_replay, dlq_purge,
                    links, links_invalidate, formulas, formulas_check, formulas_try,
                    formulas_history, reprocess, storage, storage_history, storage_fillfactor}) {
    sub->fallthrough();
  }
  CLI11_PARSE(app, argc, argv);

  if (version->parsed()) {
    std::printf("asset-worker %s\n", ATW_VERSION);
    return 0;
  }
  if (atw::Status st = atw::finalize(config); !st.ok()) {
    atw::print_error(st.message());
    return 2;
  }
  if (migrate->parsed()) return atw::run_migrate(config);
  if (storage->parsed()) {
    storage_request.what = storage_fillfactor->parsed() ? atw::StorageRequest::kAssetsFillfactor
                                                        : atw::StorageRequest::kHistoryPartitions;
    return atw::run_storage_change(config, storage_request);
  }
  if (maintain->parsed()) return atw::run_maintain(config);
  if (formulas_check->parsed()) return atw::run_formulas_check(config);
  if (formulas_try->parsed()) return atw::run_formulas_try(config, try_type, try_metrics);
  if (formulas_history->parsed()) return atw::run_formulas_history(config, history_type);
  if (links_invalidate->parsed()) {
    if (links_all == (!links_org.empty() || !links_device.empty()) ||
        (!links_all && (links_org.empty() || links_device.empty()))) {
      std::fprintf(stderr, "asset-worker: links invalidate needs --org and --device, or --all\n");
      return 2;
    }
    return atw::run_links_invalidate(config, links_org, links_device, links_all);
  }
  if (dlq->parsed()) {
    for (auto* sub : {dlq_list, dlq_show, dlq_replay, dlq_purge}) {
      if (sub->parsed()) dlq_action = sub->get_name();
    }
    if (dlq_action != "list" && selection.sequences.empty() && selection.error_type.empty() &&
        !selection.all) {
      std::fprintf(stderr,
                   "asset-worker: choose dead letters with SEQ..., --error-type or --all\n");
      return 2;
    }
    return atw::run_dlq(config, dlq_action, selection);
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::atomic<bool> stop{false};
  std::thread signals = start_signal_thread(stop, set);
  signals.detach();
  if (reprocess->parsed()) return atw::run_reprocess(config, reprocess_request, stop);
  return atw::run_worker(config, stop);
}

}  // namespace

int main(int argc, char** argv) {
  // The commands report their failures as statuses; an exception that still escapes (out of
  // memory while parsing options) ends the process with a line that says so, not an abort.
  try {
    return run_command(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asset-worker: unexpected exception: %s\n",
                 atw::redact_secrets(e.what()).c_str());
    return 70;
  }
}
