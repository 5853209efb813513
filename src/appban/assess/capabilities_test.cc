#include <gtest/gtest.h>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

std::vector<CapabilitySpec> Specs() {
  auto specs = ParseCapabilities(R"({"capabilities": [
    {"id": "location", "title": "Precise location", "severity": "high",
     "permissions": ["android.permission.ACCESS_FINE_LOCATION"],
     "apis": ["Landroid/location/LocationManager;->getLastKnownLocation", "Lcom/google/android/gms/location/FusedLocationProviderClient;->"]},
    {"id": "contacts", "title": "Contacts", "severity": "high",
     "permissions": ["android.permission.READ_CONTACTS"],
     "apis": ["Landroid/provider/ContactsContract$Contacts;"], "strings": ["content://com.android.contacts"]},
    {"id": "camera", "title": "Camera", "severity": "medium",
     "permissions": ["android.permission.CAMERA"], "apis": ["Landroid/hardware/Camera;->open"]},
    {"id": "accessibility_service", "title": "Accessibility", "severity": "critical",
     "service_permissions": ["android.permission.BIND_ACCESSIBILITY_SERVICE"],
     "apis": ["Landroid/accessibilityservice/AccessibilityService;"]},
    {"id": "clipboard", "title": "Clipboard", "severity": "medium",
     "apis": ["Landroid/content/ClipboardManager;->getPrimaryClip"]},
    {"id": "native_code", "title": "Native code", "severity": "low",
     "apis": ["Ljava/lang/System;->loadLibrary"], "files": ["lib/*/*.so"]},
    {"id": "sms", "title": "SMS", "severity": "high",
     "permissions": ["android.permission.READ_SMS"], "apis": ["Landroid/telephony/SmsManager;->sendTextMessage"]}
  ]})",
                                 "c.json");
  EXPECT_TRUE(specs.ok()) << specs.status().ToString();
  return std::move(specs).value();
}

TEST(Capabilities, GlobStaysWithinOnePathSegment) {
  EXPECT_TRUE(GlobMatch("lib/*/*.so", "lib/arm64-v8a/libfoo.so"));
  EXPECT_FALSE(GlobMatch("lib/*/*.so", "lib/arm64-v8a/sub/libfoo.so"));
  EXPECT_TRUE(GlobMatch("libjiagu*.so", "libjiagu_a64.so"));
  EXPECT_FALSE(GlobMatch("libjiagu*.so", "libjiagu.so.txt"));
  EXPECT_TRUE(GlobMatch("assets/dp.*.so.dat", "assets/dp.arm-v7.so.dat"));
}

TEST(Capabilities, RequestedUsedCodeOnlyAndNeitherAreDistinguished) {
  apk::Manifest manifest;
  manifest.package = "com.example";
  manifest.permissions = {{"android.permission.ACCESS_FINE_LOCATION", {}, false},
                          {"android.permission.READ_CONTACTS", {}, false},
                          {"android.permission.CAMERA", {}, false}};
  apk::Component service;
  service.kind = apk::ComponentKind::kService;
  service.name = "com.example.Watcher";
  service.permission = "android.permission.BIND_ACCESSIBILITY_SERVICE";
  manifest.components.push_back(service);

  PlainCodeView code;
  code.methods = {{"Landroid/location/LocationManager;->getLastKnownLocation", "classes.dex"},
                  {"Lcom/google/android/gms/location/FusedLocationProviderClient;->getLastLocation", "classes2.dex"},
                  {"Landroid/telephony/SmsManager;->sendTextMessage", "classes.dex"},
                  {"Landroid/content/ClipboardManager;->setPrimaryClip", "classes.dex"},
                  {"Ljava/lang/System;->loadLibrary", "classes.dex"}};
  code.strings = {{"content://com.android.contacts", "classes.dex"}};
  code.files = {"lib/arm64-v8a/libnative.so", "res/layout/main.xml"};

  const std::vector<CapabilitySpec> specs = Specs();
  const std::vector<CapabilityResult> results = DetectCapabilities(manifest, code, specs);
  ASSERT_EQ(results.size(), specs.size());
  EXPECT_TRUE(results[0].requested && results[0].used);  // location
  EXPECT_EQ(results[0].permissions, std::vector<std::string>{"android.permission.ACCESS_FINE_LOCATION"});
  EXPECT_TRUE(results[1].requested && results[1].used);    // contacts via the content URI string
  EXPECT_TRUE(results[2].requested && !results[2].used);   // camera: permission only
  EXPECT_TRUE(results[3].requested && !results[3].used);   // accessibility: bound service only
  EXPECT_TRUE(!results[4].requested && !results[4].used);  // clipboard: setPrimaryClip is writing, not reading
  EXPECT_TRUE(!results[5].requested && results[5].used);   // native code
  EXPECT_TRUE(!results[6].requested && results[6].used);   // SMS code without the permission

  std::vector<std::string> ids;
  const std::vector<Finding> findings = CapabilityFindings(results, specs);
  for (const Finding& f : findings) ids.push_back(f.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"capability.location.used", "capability.contacts.used",
                                           "capability.camera.requested", "capability.accessibility_service.requested",
                                           "capability.native_code.used", "capability.sms.code_only"}));
  EXPECT_EQ(findings[0].severity, Severity::kHigh);
  EXPECT_EQ(findings[2].severity, Severity::kLow);  // requested only: one step below the capability's
  EXPECT_EQ(findings[3].severity, Severity::kHigh);
  EXPECT_EQ(findings[5].severity, Severity::kInfo);
  // Evidence: the permission, then each API reference with its DEX file.
  ASSERT_EQ(findings[0].evidence.size(), 3u);
  EXPECT_EQ(findings[0].evidence[0].kind, "permission");
  EXPECT_EQ(findings[0].evidence[2].value,
            "Lcom/google/android/gms/location/FusedLocationProviderClient;->getLastLocation");
  EXPECT_EQ(findings[0].evidence[2].location, "classes2.dex");
  EXPECT_EQ(findings[3].evidence[0].value, "/manifest/application/service[@name=com.example.Watcher]");
  EXPECT_EQ(findings[4].evidence.size(), 2u);  // loadLibrary + the .so
}

}  // namespace
}  // namespace appban::assess
