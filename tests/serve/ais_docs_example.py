"""An example from AIStore's own ETL documentation, kept verbatim so a test can run it unchanged.

Source: NVIDIA/aistore ``docs/etl.md``, section "Using ``init_class`` (Python SDK Only)" (MIT
license, (c) NVIDIA CORPORATION). The two snippets there expect ``client`` (an ``aistore`` SDK
client) and ``FastAPIServer`` to be defined; the test supplies both and nothing else.
"""

from __future__ import annotations

INIT_CLASS_SNIPPET = """
etl_upper_case = client.etl("etl-upper-case")

@etl_upper_case.init_class()
class UpperCaseETL(FastAPIServer):
    def transform(self, data, *_args):
        return data.upper()
"""

TESTING_SNIPPET = """
bucket = client.bucket("etl-examples").create(exist_ok=True)
obj = bucket.object("test.txt")
obj.get_writer().put_content(b"Hello ais-etl!")

print(obj.get_reader().read_all())
# Output: b'Hello ais etl!'

from aistore.sdk.etl import ETLConfig
print(obj.get_reader(etl=ETLConfig(etl_upper_case.name)).read_all())
# Output: b'HELLO AIS ETL!'
"""
