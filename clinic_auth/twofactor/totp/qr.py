import base64
import io

import qrcode

QR_TARGET_PIXELS = 264  # about the size a phone camera reads well from a screen
QR_QUIET_ZONE = 4  # modules of white border the QR standard asks for


def data_uri(text: str) -> tuple[str, int]:
    """A PNG QR code, inline, so the secret never sits in a file or a URL; and its size in px.

    Every module is a whole number of pixels and the page shows the image at its own size,
    so no square is stretched unevenly (53 modules squeezed into 264 px blur the edges).
    """
    qr = qrcode.QRCode(border=QR_QUIET_ZONE, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    qr.box_size = max(2, QR_TARGET_PIXELS // (qr.modules_count + 2 * QR_QUIET_ZONE))
    image = qr.make_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), image.pixel_size
