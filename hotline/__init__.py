"""hotline: an IVR and call-routing server for Asterisk and Twilio."""
