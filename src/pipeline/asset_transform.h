#pragma once
// One message through one device's links (seed steps 5a-5c): mapping, derived metrics, health.
// Compiled asset types are kept here, each schema text of a type compiled once.

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "domain/asset_type.h"
#include "domain/links.h"
#include "domain/telemetry.h"
#include "pipeline/ports.h"

namespace atw {

struct TransformCounts {
  uint64_t assets_skipped_no_metrics = 0;  // SPEC D10a
  DerivationStats derivation;
};

class AssetTypeRegistry {
 public:
  // Called once for each newly compiled schema that has problems (SPEC D9: reported once per
  // asset type, not per message).
  using ProblemReporter = std::function<void(const AssetTypeModel&)>;
  explicit AssetTypeRegistry(ProblemReporter report = {}) : report_(std::move(report)) {}

  // The type compiled from this text. A type can come with more than one text at a time: after
  // its schema is edited, links cached before carry the old text until they are reloaded. The
  // latest kTextsPerType texts of each type stay compiled, so messages that alternate between
  // them do not compile at every turn.
  const AssetTypeModel& model(const std::string& asset_type_id, const std::string& schema_json);
  size_t size() const { return models_.size(); }  // asset types

  static constexpr size_t kTextsPerType = 4;

 private:
  struct Compiled {
    std::string schema_json;
    std::shared_ptr<AssetTypeModel> model;
  };
  // Per asset type, the latest compiled last.
  std::unordered_map<std::string, std::vector<Compiled>> models_;
  ProblemReporter report_;
};

// The assets this message updates: one entry per asset that a link valid at the message's
// timestamp serves and that gets at least one metric, in order of its first such link. `links`
// must be in link-id order (order_by_link_id): several links to one asset are merged in that
// order, the first to give an asset metric keeping it (SPEC D8).
std::vector<AssetResult> transform_message(const TelemetryMessage& message, const LinkSet& links,
                                           AssetTypeRegistry& types, TransformCounts& counts);

}  // namespace atw
