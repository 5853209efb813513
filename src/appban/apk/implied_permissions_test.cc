// The implied-permission rules on requested lists the test controls. Agreement with
// `aapt dump badging` on real APKs is checked in manifest_test.cc and tests/inspect_test.cc.
#include "appban/apk/implied_permissions.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace appban::apk {
namespace {

RequestedPermission Requested(const std::string& name, std::optional<int> max_sdk = std::nullopt) {
  return {"android.permission." + name, max_sdk, false};
}

// name (without "android.permission.") -> reason, for compact expectations.
std::map<std::string, std::string> Reasons(const std::vector<ImpliedPermission>& implied) {
  std::map<std::string, std::string> out;
  for (const ImpliedPermission& p : implied) {
    std::string name = p.name.starts_with("android.permission.") ? p.name.substr(19) : p.name;
    EXPECT_TRUE(out.emplace(name, p.reason).second) << name << " implied twice";
  }
  return out;
}

TEST(ImpliedPermissions, WriteExternalStorageBringsReadWithItsMaxSdk) {
  auto implied = ImpliedPermissions({Requested("WRITE_EXTERNAL_STORAGE", 18)}, 27);
  ASSERT_EQ(implied.size(), 1u);
  EXPECT_EQ(implied[0].name, "android.permission.READ_EXTERNAL_STORAGE");
  EXPECT_EQ(implied[0].reason, "requested WRITE_EXTERNAL_STORAGE");  // aapt's wording
  EXPECT_EQ(implied[0].implied_by, "android.permission.WRITE_EXTERNAL_STORAGE");
  EXPECT_EQ(implied[0].max_sdk, 18);
}

TEST(ImpliedPermissions, TargetBeforeDonutGetsStorageAndPhoneStateThenTheirSplits) {
  auto implied = ImpliedPermissions({Requested("INTERNET")}, 3);
  EXPECT_EQ(Reasons(implied),
            (std::map<std::string, std::string>{
                {"WRITE_EXTERNAL_STORAGE", "targetSdkVersion < 4"},
                {"READ_PHONE_STATE", "targetSdkVersion < 4"},
                {"READ_EXTERNAL_STORAGE", "requested WRITE_EXTERNAL_STORAGE"},
                {"ACCESS_MEDIA_LOCATION", "targetSdkVersion < 29 and requested READ_EXTERNAL_STORAGE"},
                {"READ_MEDIA_AUDIO", "targetSdkVersion < 33 and requested READ_EXTERNAL_STORAGE"},
                {"READ_MEDIA_VIDEO", "targetSdkVersion < 33 and requested READ_EXTERNAL_STORAGE"},
                {"READ_MEDIA_IMAGES", "targetSdkVersion < 33 and requested READ_EXTERNAL_STORAGE"},
                {"READ_MEDIA_VISUAL_USER_SELECTED", "requested READ_MEDIA_IMAGES"},
            }));
  EXPECT_EQ(implied[0].implied_by, "");
  EXPECT_TRUE(ImpliedPermissions({Requested("INTERNET")}, 4).empty());
}

// Rows checked against AOSP's platform.xml: WRITE_EXTERNAL_STORAGE brings the media permissions
// of its own (not only through READ_EXTERNAL_STORAGE); partial photo access
// (READ_MEDIA_VISUAL_USER_SELECTED) comes with every target, and with ACCESS_MEDIA_LOCATION too;
// Android 16 moved BODY_SENSORS to the health permissions. Nothing comes from the Play services
// activity-recognition permission, which platform.xml does not split.
TEST(ImpliedPermissions, RowsFollowPlatformXml) {
  EXPECT_EQ(Reasons(ImpliedPermissions({Requested("WRITE_EXTERNAL_STORAGE")}, 28)),
            (std::map<std::string, std::string>{
                {"READ_EXTERNAL_STORAGE", "requested WRITE_EXTERNAL_STORAGE"},
                {"ACCESS_MEDIA_LOCATION", "targetSdkVersion < 29 and requested READ_EXTERNAL_STORAGE"},
                {"READ_MEDIA_AUDIO", "targetSdkVersion < 33 and requested READ_EXTERNAL_STORAGE"},
                {"READ_MEDIA_VIDEO", "targetSdkVersion < 33 and requested READ_EXTERNAL_STORAGE"},
                {"READ_MEDIA_IMAGES", "targetSdkVersion < 33 and requested READ_EXTERNAL_STORAGE"},
                {"READ_MEDIA_VISUAL_USER_SELECTED", "requested READ_MEDIA_IMAGES"},
            }));
  // Requested only up to Android 12 (maxSdkVersion 32): no Android 13 media permission, but the
  // media location it brings still brings partial photo access.
  EXPECT_EQ(Reasons(ImpliedPermissions({Requested("WRITE_EXTERNAL_STORAGE", 32)}, 28)),
            (std::map<std::string, std::string>{
                {"READ_EXTERNAL_STORAGE", "requested WRITE_EXTERNAL_STORAGE"},
                {"ACCESS_MEDIA_LOCATION", "targetSdkVersion < 29 and requested READ_EXTERNAL_STORAGE"},
                {"READ_MEDIA_VISUAL_USER_SELECTED", "requested ACCESS_MEDIA_LOCATION"},
            }));
  EXPECT_EQ(Reasons(ImpliedPermissions({Requested("WRITE_EXTERNAL_STORAGE")}, 33)),
            (std::map<std::string, std::string>{{"READ_EXTERNAL_STORAGE", "requested WRITE_EXTERNAL_STORAGE"}}));
  EXPECT_EQ(Reasons(ImpliedPermissions({Requested("READ_MEDIA_IMAGES")}, 35)),
            (std::map<std::string, std::string>{{"READ_MEDIA_VISUAL_USER_SELECTED", "requested READ_MEDIA_IMAGES"}}));
  EXPECT_EQ(
      Reasons(ImpliedPermissions({Requested("ACCESS_MEDIA_LOCATION")}, 35)),
      (std::map<std::string, std::string>{{"READ_MEDIA_VISUAL_USER_SELECTED", "requested ACCESS_MEDIA_LOCATION"}}));
  EXPECT_EQ(Reasons(ImpliedPermissions({Requested("BODY_SENSORS")}, 35)),
            (std::map<std::string, std::string>{
                {"health.READ_HEART_RATE", "targetSdkVersion < 36 and requested BODY_SENSORS"}}));
  EXPECT_TRUE(ImpliedPermissions({Requested("BODY_SENSORS")}, 36).empty());
  EXPECT_TRUE(ImpliedPermissions({{"com.google.android.gms.permission.ACTIVITY_RECOGNITION", std::nullopt, false}}, 28)
                  .empty());
}

TEST(ImpliedPermissions, ThresholdsAreStrictlyBelowTheTargetSdk) {
  EXPECT_EQ(
      Reasons(ImpliedPermissions({Requested("READ_CONTACTS")}, 15)),
      (std::map<std::string, std::string>{{"READ_CALL_LOG", "targetSdkVersion < 16 and requested READ_CONTACTS"}}));
  EXPECT_TRUE(ImpliedPermissions({Requested("READ_CONTACTS")}, 16).empty());

  EXPECT_EQ(Reasons(ImpliedPermissions({Requested("ACCESS_FINE_LOCATION")}, 28)),
            (std::map<std::string, std::string>{
                {"ACCESS_COARSE_LOCATION", "requested ACCESS_FINE_LOCATION"},
                {"ACCESS_BACKGROUND_LOCATION", "targetSdkVersion < 29 and requested ACCESS_FINE_LOCATION"}}));
  EXPECT_EQ(Reasons(ImpliedPermissions({Requested("ACCESS_FINE_LOCATION")}, 29)),
            (std::map<std::string, std::string>{{"ACCESS_COARSE_LOCATION", "requested ACCESS_FINE_LOCATION"}}));
}

TEST(ImpliedPermissions, NeverRepeatsARequestedOrAlreadyImpliedPermission) {
  auto implied = ImpliedPermissions({Requested("ACCESS_COARSE_LOCATION"), Requested("ACCESS_FINE_LOCATION"),
                                     Requested("BLUETOOTH"), Requested("BLUETOOTH_ADMIN"), Requested("BLUETOOTH_SCAN")},
                                    30);
  EXPECT_EQ(Reasons(implied), (std::map<std::string, std::string>{
                                  {"BLUETOOTH_CONNECT", "targetSdkVersion < 31 and requested BLUETOOTH"},
                                  {"BLUETOOTH_ADVERTISE", "targetSdkVersion < 31 and requested BLUETOOTH"},
                              }));
}

TEST(ImpliedPermissions, ASplitIsSkippedWhenTheOldPermissionEndsBeforeIt) {
  // BLUETOOTH with maxSdkVersion 30 is not requested on Android 12, where BLUETOOTH_* exist.
  EXPECT_TRUE(ImpliedPermissions({Requested("BLUETOOTH", 30)}, 26).empty());
  auto implied = ImpliedPermissions({Requested("BLUETOOTH", 31)}, 26);
  ASSERT_EQ(implied.size(), 3u);
  EXPECT_EQ(implied[0].max_sdk, 31);
}

TEST(ImpliedPermissions, TheTableNamesEachSplitOnce) {
  std::map<std::pair<std::string_view, std::string_view>, int> seen;
  for (const SplitPermission& split : SplitPermissions()) {
    const int times = ++seen[{split.from, split.to}];
    EXPECT_EQ(times, 1) << split.from << " -> " << split.to;
    EXPECT_NE(split.from, split.to);
  }
}

}  // namespace
}  // namespace appban::apk
