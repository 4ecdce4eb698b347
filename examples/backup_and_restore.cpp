// SPDX-License-Identifier: Apache-2.0
// Backs up every key of one PKCS#11 token and restores it into another, in memory, then
// proves the copy: the backup's keys sign in a throw-away SoftHSM token (the drill) and
// the second token holds the same keys as the backup. Uses only <p11vault/...> headers.
//
//     export P11VAULT_EXAMPLE_PIN=1234 P11VAULT_EXAMPLE_PASSWORD='a long passphrase'
//     backup_and_restore /usr/lib/softhsm/libsofthsm2.so old-ca new-ca
//
// Both tokens take the PIN of $P11VAULT_EXAMPLE_PIN; the backup is protected with
// $P11VAULT_EXAMPLE_PASSWORD while it exists (here only in memory). Exit code 0 when the
// copy is proven, else the p11vault exit code of the error (docs/cli.md).
#include <p11vault/backup.hpp>
#include <p11vault/error.hpp>
#include <p11vault/events.hpp>
#include <p11vault/key_result.hpp>
#include <p11vault/restore.hpp>
#include <p11vault/token.hpp>
#include <p11vault/verify.hpp>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

namespace {

// The library never prompts: it asks a SecretProvider. This one answers from the
// environment; a real program might ask a vault or its user.
class EnvironmentSecrets : public p11vault::SecretProvider {
public:
    p11vault::SecretBytes provide(const p11vault::SecretRequest& request) override {
        const char* name = request.purpose == p11vault::SecretPurpose::token_pin ? "P11VAULT_EXAMPLE_PIN"
                                                                                 : "P11VAULT_EXAMPLE_PASSWORD";
        const char* value = std::getenv(name);
        if (value == nullptr || *value == '\0')
            throw p11vault::Error(p11vault::ErrorKind::usage, std::string("set ") + name + " (for " + request.subject + ")");
        return p11vault::SecretBytes::from_text(value);
    }
};

// The library never writes to stderr: warnings and progress come here.
class PrintingEvents : public p11vault::Events {
public:
    void warning(std::string_view text) override { std::cerr << "warning: " << text << '\n'; }
    void progress(const p11vault::ProgressEvent& event) override {
        if (!event.current.empty())
            std::cerr << event.phase << ": " << event.done << "/" << event.total << " " << event.current << '\n';
    }
};

// SoftHSM2 takes its configuration only from $SOFTHSM2_CONF, and the library never
// changes the environment: the drill asks the program to point the variable at the drill's
// throw-away token, and to put it back. This program has one thread, so it may.
class SoftHsmConfForDrill : public p11vault::DrillEnvironment {
public:
    void enter(const std::string& config_path) override {
        if (const char* current = std::getenv("SOFTHSM2_CONF")) previous_ = current;
        ::setenv("SOFTHSM2_CONF", config_path.c_str(), 1);
    }
    void leave() noexcept override {
        if (previous_) ::setenv("SOFTHSM2_CONF", previous_->c_str(), 1);
        else ::unsetenv("SOFTHSM2_CONF");
    }

private:
    std::optional<std::string> previous_;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: backup_and_restore MODULE SOURCE_LABEL TARGET_LABEL\n";
        return 2;
    }
    EnvironmentSecrets secrets;
    PrintingEvents events;
    try {
        // 1. Every private and secret key of the source token, into PKCS#12 bytes.
        p11vault::BackupSpec backup_spec;
        backup_spec.token.module = argv[1];
        backup_spec.token.label = argv[2];
        backup_spec.keys.all = true;
        const p11vault::BackupReport backed_up = p11vault::backup(backup_spec, secrets, events);
        for (const auto& key : backed_up.keys)
            std::cout << "backed up " << key.label << " (" << key.type << ") by "
                      << p11vault::key_path_name(key.path) << '\n';

        // 2. Into the target token: all or nothing, keys not extractable.
        p11vault::RestoreSpec restore_spec;
        restore_spec.token.module = argv[1];
        restore_spec.token.label = argv[3];
        restore_spec.file = backed_up.file;
        restore_spec.file_name = "the backup of " + backed_up.token.label;
        const p11vault::RestoreReport restored = p11vault::restore(restore_spec, secrets, events);
        std::cout << "restored " << restored.keys.size() << " key(s) into " << restored.token.label << '\n';

        // 3. The proof: the backup's keys sign and verify (the drill restores them into a
        //    throw-away SoftHSM token), and the target token holds exactly its keys.
        p11vault::VerifySpec verify_spec;
        verify_spec.file = backed_up.file;
        verify_spec.file_name = restore_spec.file_name;
        verify_spec.compare_with = restore_spec.token;
        verify_spec.drill = true;
        SoftHsmConfForDrill drill_environment;
        verify_spec.drill_environment = &drill_environment;
        const p11vault::VerifyReport verified = p11vault::verify(verify_spec, secrets, events);
        for (const auto& key : verified.drill) std::cout << (key.ok ? "ok   " : "FAIL ") << key.key << ": " << key.detail << '\n';
        if (!verified.drill_ok() || !verified.comparison || !verified.comparison->same()) {
            std::cerr << "the copy is not proven\n";
            return 4;
        }
        std::cout << "the target token holds the " << verified.comparison->matched << " key(s) of the backup\n";
        return 0;
    } catch (const p11vault::Error& e) {
        std::cerr << "error: " << e.what() << '\n';
        return static_cast<int>(e.kind());
    }
}
