{
  "format": "bes-integrity-signature/1",
  "algorithm": "ed25519",
  "key_id": "56475aa75463474c0285df5dbf2bcab7",
  "public_key": "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
  "signature": "8Aftk9vc2Ce1LKDKuXfY8WV16/fQAyYktC/rtFuIe+NWeA+iu1qa56lEh1vvje+MwDbx+pJWGt+2svgZwMaNCg=="
}
