"""Privacy audit: do synthetic pairs copy training patches, can an attacker tell members?"""
