#pragma once
// The design document's example message (seed step 2), verbatim, shared by the unit tests.

#include <string_view>

namespace atw::testing {

inline constexpr std::string_view kSeedMessage = R"({
  "messageId": "uuid-12345",
  "deviceId": "device-abc-123",
  "organizationId": "org-xyz-789",
  "timestamp": "2026-01-28T14:30:00Z",
  "receivedAt": "2026-01-28T14:30:01.234Z",
  "metrics": {
    "temperature": 25.5,
    "voltage": 12.3,
    "current": 2.5,
    "pressure": 101.3
  },
  "deviceMetadata": {
    "deviceType": "RTU-4000",
    "serialNumber": "SN-001",
    "firmwareVersion": "2.3.1"
  }
})";

}  // namespace atw::testing
