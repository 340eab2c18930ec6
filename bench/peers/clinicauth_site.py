"""ClinicAuth as shipped (clinic_auth.settings), with the peers' one-line page added at /protected/.

Every path of the app is behind LoginRequiredMiddleware and TwoFactorMiddleware, so the page needs
no decorator; the same bytes as the peers' page, so throughput compares the stacks, not templates.
"""

from clinic_auth.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.peers.clinicauth_urls"
