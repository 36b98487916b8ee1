"""jupyter_kernel_test's conformance suite against the installed kernelspec, every sample filled.

jupyter_kernel_test (0.7.0, the latest release) has no input test: `test_input_request` below
checks the stdin round trip in its style, with its sample `code_input`."""
import unittest

import jupyter_kernel_test
from jupyter_kernel_test.msgspec_v5 import validate_message

from kernelclient import KERNEL_NAME


class RustClusterKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "rust"
    file_extension = ".rs"

    code_hello_world = 'println!("hello, world")'
    code_stderr = 'eprintln!("oops")'
    completion_samples = [{"text": "let zebra_count = 1; zebra_c", "matches": {"zebra_count"}}]
    complete_code_samples = ["1 + 1", "fn f() -> u8 { 1 }", "%lsmagic", ":vars"]
    incomplete_code_samples = ["fn f() {", "let v = vec![1,", 'let s = "open']
    invalid_code_samples = ["let x = 1);", "fn f() { ]"]
    code_execute_result = [{"code": "40 + 2", "result": "42"}, {"code": '"a".repeat(3)', "result": '"aaa"'}]
    code_display_data = [
        {"code": 'jupyter::html("<b>bold</b>")', "mime": "text/html"},
        {"code": 'jupyter::svg("<svg xmlns=\\"http://www.w3.org/2000/svg\\"></svg>")', "mime": "image/svg+xml"},
        # evcxr's own protocol, as crates that target evcxr print it (evcxr_jupyter's sample).
        {"code": 'println!("EVCXR_BEGIN_CONTENT text/html\\n<b>bold</b>\\nEVCXR_END_CONTENT");', "mime": "text/html"},
    ]
    code_history_pattern = "40*"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "std::vec::Vec"
    code_page_something = "?std::vec::Vec"
    code_clear_output = "jupyter::clear_output(false)"
    code_generate_error = 'panic!("expected failure")'
    # The documented way to read input in evcxr, as a user writes it in a fresh session.
    code_input = ':dep evcxr_input = "1"\nevcxr_input::get_string("Your name: ")'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The first cell waits for evcxr to start; do it once outside the timed samples.
        cls.kc.execute_interactive("0", timeout=180)

    def test_input_request(self):
        self.flush_channels()
        msg_id = self.kc.execute(self.code_input, allow_stdin=True)
        # The first use builds the evcxr_input crate: a generous wait, never an assertion.
        request = self.kc.get_stdin_msg(timeout=180)
        # msgspec_v5 declares `password` a number where the spec (and ipykernel) send a bool:
        # validated as the number it stands for, and checked as the bool below.
        as_number = {**request["content"], "password": int(request["content"]["password"])}
        validate_message({**request, "content": as_number}, "input_request", msg_id)
        self.assertEqual(request["content"], {"prompt": "Your name: ", "password": False})
        self.kc.input("test")
        reply = self.get_non_kernel_info_reply(timeout=60)
        validate_message(reply, "execute_reply", msg_id)
        self.assertEqual(reply["content"]["status"], "ok")


if __name__ == "__main__":
    unittest.main()
