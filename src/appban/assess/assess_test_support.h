// Helpers shared by the assess part's tests: the knowledge, iOS knowledge and risk model shipped
// in data/, loaded as `appban assess` loads them.
#pragma once

#include <gtest/gtest.h>

#include "appban/assess/analysis.h"
#include "appban/assess/ios_assess.h"
#include "appban/assess/risk.h"

namespace appban::assess::testing {

struct ShippedData {
  KnowledgeBase knowledge;
  IosKnowledge ios;
  RiskModel model;
};

// Loads data/ (fails the calling test, naming the file, when one does not load).
inline void LoadShippedData(ShippedData* out) {
  auto knowledge = LoadKnowledgeBase(APPBAN_SOURCE_DIR "/data");
  ASSERT_TRUE(knowledge.ok()) << knowledge.status().ToString();
  out->knowledge = std::move(*knowledge);
  auto ios = LoadIosKnowledge(APPBAN_SOURCE_DIR "/data");
  ASSERT_TRUE(ios.ok()) << ios.status().ToString();
  out->ios = std::move(*ios);
  auto model = LoadRiskModel(APPBAN_SOURCE_DIR "/data/risk-model.toml");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  out->model = std::move(*model);
}

}  // namespace appban::assess::testing
